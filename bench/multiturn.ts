// `npm run bench:multiturn`: multi-turn chat through `berth serve`: N concurrent sessions, each a
// system prompt and several turns sent with the whole history to /v1/chat/completions (streamed).
// The same run twice on one model file: prefix reuse on (the default) and off (--no-prefix-reuse),
// in alternating rounds. Reports prefix reuse (prompt tokens served from a slot's cache, from the
// usage field, ÷ the tokens the session's slot held after its previous turn) and TTFT p50 of the
// turns that could reuse (turn 2 on), reuse vs no reuse. Smoke mode (BENCH_SMOKE=1) for CI.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import { engineProcessEnv } from "../src/engine/process.js";
import { ensureTinyModel } from "../src/models/tiny.js";
import { freePort } from "../test/support/net.js";
import { cpuMsWithChildren, waitReady } from "./cold-start.js";
import { failureOfAnswer, SseReader } from "./failures.js";

interface Config {
  smoke: boolean;
  sessions: number;
  turns: number;
  maxTokens: number;
  threads: number;
  repeat: number;
}

interface Message {
  role: "system" | "user" | "assistant";
  content: string;
}

interface TurnSample {
  session: number;
  turn: number;
  ttftMs: number;
  promptTokens: number;
  cachedTokens: number;
  /** What the session's slot held after its previous turn (prompt + completion); 0 on turn 1. */
  reusableTokens: number;
}

interface RunResult {
  mode: "reuse" | "no-reuse";
  round: number;
  samples: TurnSample[];
  wallSeconds: number;
  serverCpuMs: number;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), findRoot());

function findRoot(): string {
  // Compiled to .berth/bench-build/bench/multiturn.js, or run from bench/.
  return fileURLToPath(import.meta.url).includes(".berth/bench-build") ? "../../.." : "..";
}

function configFrom(argv: string[]): Config {
  const smoke = argv.includes("--smoke") || process.env.BENCH_SMOKE === "1";
  const number = (name: string, fallback: number) =>
    Number(argv.find((arg) => arg.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
  return {
    smoke,
    sessions: number("sessions", smoke ? 2 : 4),
    turns: number("turns", smoke ? 2 : 5),
    maxTokens: number("max-tokens", smoke ? 4 : 32),
    threads: number("threads", 2),
    repeat: number("repeat", smoke ? 1 : 2),
  };
}

const TOPICS = ["harbour ledger", "orchard", "lighthouse", "bakery", "railway timetable", "observatory"];

/** A distinct ~150-token system prompt per session, as a real assistant's instructions are. */
function systemPrompt(session: number): string {
  const topic = TOPICS[session % TOPICS.length]!;
  return (
    `You are the keeper of the ${topic} (session ${session}). Answer in one or two plain sentences. ` +
    `Never invent names or numbers; when you do not know, say so. Keep to the ${topic}: its people, ` +
    "its records, its daily work and its history. Be polite but brief; no lists, no headings, no " +
    "markup. When a question is unclear, ask one short question back instead of guessing. Use the " +
    "metric system and the 24-hour clock. Quote the records exactly when asked about them, and say " +
    "which page they are on. Do not repeat the question. Do not apologise. Do not mention these rules."
  );
}

function userMessage(session: number, turn: number): string {
  return `Question ${turn + 1} from visitor ${session}: what happened there on day ${turn * 3 + session + 1}?`;
}

/** One streamed chat turn: TTFT (first content) and the usage the server reports. */
async function chatTurn(pool: Pool, messages: Message[], maxTokens: number) {
  const startedAt = performance.now();
  const { statusCode, body } = await pool.request({
    path: "/v1/chat/completions",
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "bench",
      messages,
      max_tokens: maxTokens,
      temperature: 0,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (statusCode !== 200) throw failureOfAnswer(statusCode, await body.text());
  let firstContentAt: number | undefined;
  let text = "";
  let usage: { prompt_tokens: number; completion_tokens: number; cached: number } | undefined;
  const reader = new SseReader((event) => {
    const chunk = event as {
      choices?: Array<{ delta?: { content?: string } }>;
      usage?: {
        prompt_tokens: number;
        completion_tokens: number;
        prompt_tokens_details?: { cached_tokens?: number };
      };
    };
    const content = chunk.choices?.[0]?.delta?.content;
    if (content) {
      firstContentAt ??= performance.now();
      text += content;
    }
    if (chunk.usage) {
      usage = {
        prompt_tokens: chunk.usage.prompt_tokens,
        completion_tokens: chunk.usage.completion_tokens,
        cached: chunk.usage.prompt_tokens_details?.cached_tokens ?? 0,
      };
    }
  });
  for await (const bytes of body) reader.push(bytes as Uint8Array);
  reader.end();
  if (!usage) throw new Error("the stream ended without a usage chunk");
  return { ttftMs: (firstContentAt ?? performance.now()) - startedAt, text, usage };
}

async function runSession(pool: Pool, config: Config, session: number): Promise<TurnSample[]> {
  const messages: Message[] = [{ role: "system", content: systemPrompt(session) }];
  const samples: TurnSample[] = [];
  let reusableTokens = 0;
  for (let turn = 0; turn < config.turns; turn++) {
    messages.push({ role: "user", content: userMessage(session, turn) });
    const answer = await chatTurn(pool, messages, config.maxTokens);
    samples.push({
      session,
      turn: turn + 1,
      ttftMs: answer.ttftMs,
      promptTokens: answer.usage.prompt_tokens,
      cachedTokens: answer.usage.cached,
      reusableTokens,
    });
    reusableTokens = answer.usage.prompt_tokens + answer.usage.completion_tokens;
    messages.push({ role: "assistant", content: answer.text });
  }
  return samples;
}

async function run(
  config: Config,
  modelPath: string,
  mode: RunResult["mode"],
  round: number,
): Promise<RunResult> {
  const port = await freePort();
  const args = [
    join(repoRoot, "bin", "berth.js"),
    "serve",
    "--model",
    modelPath,
    "--model-id",
    "bench",
    "--port",
    String(port),
    "--parallel",
    String(config.sessions),
    "--threads",
    String(config.threads),
    "--ctx",
    "1024",
    // A turn on a saturated shared machine can take minutes; a deadline would end the run, not measure it.
    "--request-timeout",
    "30m",
    ...(mode === "no-reuse" ? ["--no-prefix-reuse"] : []),
  ];
  const child: ChildProcess = spawn(process.execPath, args, {
    env: engineProcessEnv({ ...process.env, BERTH_LOG_LEVEL: "warn" }),
    stdio: ["ignore", "ignore", "inherit"],
  });
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: config.sessions + 1 });
  try {
    await waitReady(pool, "/readyz", child, 300_000, 50);
    const cpuBefore = cpuMsWithChildren(child.pid);
    const startedAt = performance.now();
    const perSession = await Promise.all(
      Array.from({ length: config.sessions }, (_, session) => runSession(pool, config, session)),
    );
    return {
      mode,
      round,
      samples: perSession.flat(),
      wallSeconds: (performance.now() - startedAt) / 1000,
      serverCpuMs: cpuMsWithChildren(child.pid) - cpuBefore,
    };
  } finally {
    await pool.close();
    const exited = new Promise((done) => child.once("exit", done));
    child.kill("SIGKILL");
    await exited;
  }
}

function percentile(values: number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

interface Summary {
  mode: RunResult["mode"];
  turns: number;
  reusePercent: number;
  cachedTokens: number;
  reusableTokens: number;
  ttftP50Ms: number;
  ttftP50LaterTurnsMs: number;
  ttftP95LaterTurnsMs: number;
  serverCpuMs: number;
}

function summarize(mode: RunResult["mode"], runs: RunResult[]): Summary {
  const samples = runs.filter((r) => r.mode === mode).flatMap((r) => r.samples);
  const later = samples.filter((sample) => sample.turn > 1);
  const cachedTokens = later.reduce((sum, sample) => sum + sample.cachedTokens, 0);
  const reusableTokens = later.reduce((sum, sample) => sum + sample.reusableTokens, 0);
  return {
    mode,
    turns: samples.length,
    reusePercent: (100 * cachedTokens) / reusableTokens,
    cachedTokens,
    reusableTokens,
    ttftP50Ms: percentile(
      samples.map((s) => s.ttftMs),
      0.5,
    ),
    ttftP50LaterTurnsMs: percentile(
      later.map((s) => s.ttftMs),
      0.5,
    ),
    ttftP95LaterTurnsMs: percentile(
      later.map((s) => s.ttftMs),
      0.95,
    ),
    serverCpuMs: runs.filter((r) => r.mode === mode).reduce((sum, r) => sum + r.serverCpuMs, 0),
  };
}

async function main(argv: string[]): Promise<void> {
  const config = configFrom(argv);
  const shape = config.smoke ? "tiny" : "gpt2-124m";
  const dtype = config.smoke ? "f16" : "q8_0";
  console.error(`bench:multiturn — preparing ${shape} ${dtype}`);
  const modelPath = await ensureTinyModel({ shape, dtype });
  const loadAtStart = loadavg()[0]!;
  const runs: RunResult[] = [];
  for (let round = 1; round <= config.repeat; round++) {
    // Alternating order, so drift in the machine's load does not favour one mode.
    const modes: RunResult["mode"][] = round % 2 === 1 ? ["reuse", "no-reuse"] : ["no-reuse", "reuse"];
    for (const mode of modes) {
      console.error(`  round ${round}: ${mode}`);
      runs.push(await run(config, modelPath, mode, round));
    }
  }
  const reuse = summarize("reuse", runs);
  const baseline = summarize("no-reuse", runs);
  const format = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : "–");
  const lines = [
    `Multi-turn chat, ${shape} ${dtype}: ${config.sessions} concurrent sessions × ${config.turns} turns ` +
      `(~150-token system prompt, whole history each turn, ${config.maxTokens} new tokens, greedy), ` +
      `--parallel ${config.sessions}, ${config.threads} threads, ${config.repeat} round(s) per mode, load average ${loadAtStart.toFixed(1)} at start.`,
    "",
    "| mode | turns | prefix reuse (turns 2+) | cached / reusable tokens | TTFT p50 ms (all) | TTFT p50 ms (turns 2+) | TTFT p95 ms (turns 2+) | server CPU ms |",
    "| --- | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const summary of [reuse, baseline]) {
    lines.push(
      `| ${summary.mode} | ${summary.turns} | ${format(summary.reusePercent, 1)}% | ${summary.cachedTokens} / ${summary.reusableTokens} | ` +
        `${format(summary.ttftP50Ms)} | ${format(summary.ttftP50LaterTurnsMs)} | ${format(summary.ttftP95LaterTurnsMs)} | ${format(summary.serverCpuMs)} |`,
    );
  }
  const ttftRatio = reuse.ttftP50LaterTurnsMs / baseline.ttftP50LaterTurnsMs;
  const cpuRatio = reuse.serverCpuMs / baseline.serverCpuMs;
  lines.push(
    "",
    "| target | measured | met |",
    "| --- | --: | --- |",
    `| prefix reuse ≥ 80% of reusable prompt tokens | ${format(reuse.reusePercent, 1)}% | ${reuse.reusePercent >= 80 ? "yes" : "no"} |`,
    `| TTFT p50 (turns 2+) ≤ 0.5× no reuse | ${format(ttftRatio, 2)}× | ${ttftRatio <= 0.5 ? "yes" : "no"} |`,
    `| (server CPU ms, reuse ÷ no reuse) | ${format(cpuRatio, 2)}× | – |`,
  );
  console.log(lines.join("\n"));
  const resultsDir = join(repoRoot, "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const file = join(
    resultsDir,
    `multiturn-${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}.json`,
  );
  writeFileSync(file, JSON.stringify({ config, loadAtStart, summaries: [reuse, baseline], runs }, null, 2));
  console.error(`wrote ${file}`);
  // Reuse that stopped working is a failure of the run (CI's smoke mode checks it this way).
  if (!(reuse.cachedTokens > 0) || baseline.cachedTokens !== 0) process.exitCode = 1;
}

await main(process.argv.slice(2));
