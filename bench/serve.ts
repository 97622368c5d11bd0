// `npm run bench:serve`: generation throughput and latency under concurrency, side by side for
// (a) the bare engine in-process, (b) `berth serve` over HTTP, (c) llama.cpp's own llama-server.
//
// Each (system, concurrency) runs in a fresh process with the same threads, slots = concurrency and
// the same context per slot, so peak RSS is per run. Greedy, 128 new tokens, end-of-sequence ignored.
// Smoke mode (`-- --smoke` or BENCH_SMOKE=1) uses the tiny model and tiny sizes, for CI.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, totalmem } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import { createLlamaEngine } from "../src/engine/llamacpp.js";
import { engineProcessEnv } from "../src/engine/process.js";
import { ensureTinyModel, type TinyDtype, type TinyShapeName } from "../src/models/tiny.js";
import { berthHome } from "../src/util/home.js";
import { type ColdStartOutcome, coldStartTable, measureColdStart, waitReady } from "./cold-start.js";
import {
  asFailedRequest,
  FAILURE_TABLE_HEAD,
  type FailedRequest,
  failureOfAnswer,
  failureRows,
  SseReader,
} from "./failures.js";
import { startNeighbour } from "./neighbour.js";

// berth-openmp: `berth serve` on scripts/build-engine.sh's OpenMP build (BERTH_ENGINE_BUILD=openmp);
// only when asked for (--systems=...,berth-openmp), and the prebuilt binary again when not built.
const SYSTEMS = ["bare", "berth", "berth-openmp", "llama-server"] as const;
type SystemName = (typeof SYSTEMS)[number];

interface BenchConfig {
  smoke: boolean;
  /** Rounds per concurrency (`--repeat=N`); the median round per system is reported. */
  repeat: number;
  /** Which systems to run (`--systems=bare,berth`); all three by default. */
  systems: SystemName[];
  shape: TinyShapeName;
  dtype: TinyDtype;
  maxTokens: number;
  concurrency: number[];
  threads: number;
  contextPerSequence: number;
  /** `--neighbour`: a one-CPU burner runs beside each system while it serves (bench/neighbour.ts). */
  neighbour: boolean;
  /** `--fixed-threads`: Berth (bare and serve) decodes with exactly `threads`, no adaptive count (the "before"). */
  fixedThreads: boolean;
  /** `--per-worker=N`: requests each closed-loop worker sends (default 4 at c = 1, else 2). */
  perWorker?: number | undefined;
}

interface RequestSample {
  ttftMs: number;
  latencyMs: number;
  tokens: number;
}

interface RunResult {
  system: SystemName;
  concurrency: number;
  requests: number;
  tokens: number;
  wallSeconds: number;
  tokensPerSecond: number;
  ttftMs: { p50: number; p95: number };
  latencyMs: { p50: number; p95: number };
  peakRssMiB: number;
  /**
   * CPU time the serving process spent per generated token during the measured requests. Less
   * sensitive than tok/s to other load on a shared machine (OpenMP spin-waits still count).
   */
  cpuMsPerToken: number;
  /** The same for the process's main thread alone (Berth: all its JavaScript; measured over HTTP only). */
  mainThreadCpuMsPerToken?: number;
  /** bare: the engine binary Berth's engine loaded (scripts/build-engine.sh's OpenMP build, or the prebuilt). */
  engineBuild?: string;
  /** Requests that failed during the measured loop: status, code and message of each. */
  failures: FailedRequest[];
}

type RunOutcome = RunResult | { system: SystemName; concurrency: number; unavailable: string };

const repoRoot = resolve(
  dirname(fileURLToPath(import.meta.url)),
  findUp(dirname(fileURLToPath(import.meta.url))),
);
const PROMPT =
  "The harbour master kept a ledger of every ship that came into port: its name, its cargo, where it had " +
  "sailed from and how long it meant to stay. On the first page he wrote";

function findUp(from: string): string {
  // Compiled to .berth/bench-build/bench/serve.js or run from bench/: find the directory with package.json.
  let relative = ".";
  for (let depth = 0; depth < 6; depth++) {
    if (existsSync(join(from, relative, "package.json"))) return relative;
    relative = join(relative, "..");
  }
  throw new Error("cannot find the repository root");
}

function requestsPerWorker(config: BenchConfig, concurrency: number): number {
  if (config.perWorker !== undefined) return config.perWorker;
  if (config.smoke) return 1;
  return concurrency === 1 ? 4 : 2;
}

function percentile(values: number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank]!;
}

function summarize(
  system: SystemName,
  concurrency: number,
  samples: RequestSample[],
  wallSeconds: number,
  peakRssMiB: number,
  cpuSeconds: number,
  failures: FailedRequest[],
): RunResult {
  const tokens = samples.reduce((sum, sample) => sum + sample.tokens, 0);
  const ttft = samples.map((sample) => sample.ttftMs);
  const latency = samples.map((sample) => sample.latencyMs);
  return {
    system,
    concurrency,
    requests: samples.length,
    tokens,
    wallSeconds,
    tokensPerSecond: tokens / wallSeconds,
    ttftMs: { p50: percentile(ttft, 0.5), p95: percentile(ttft, 0.95) },
    latencyMs: { p50: percentile(latency, 0.5), p95: percentile(latency, 0.95) },
    peakRssMiB,
    cpuMsPerToken: (cpuSeconds * 1000) / tokens,
    failures,
  };
}

/** Runs `concurrency` closed-loop workers, each sending `perWorker` requests one after another. */
async function closedLoop(
  concurrency: number,
  perWorker: number,
  send: (index: number) => Promise<RequestSample>,
): Promise<{ samples: RequestSample[]; failures: FailedRequest[]; wallSeconds: number }> {
  const samples: RequestSample[] = [];
  const failures: FailedRequest[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let round = 0; round < perWorker; round++) {
        // A failed request is recorded with its reason and the loop goes on: one 429 must not
        // hide the rest of the run, nor pass unseen.
        await send(worker * perWorker + round).then(
          (sample) => void samples.push(sample),
          (error) => void failures.push(asFailedRequest(error)),
        );
      }
    }),
  );
  return { samples, failures, wallSeconds: (performance.now() - started) / 1000 };
}

function promptFor(index: number): string {
  // Distinct from the first token on, so no system reuses a cached prompt between requests.
  return `${index + 1}. ${PROMPT}`;
}

// ---------- (a) the bare engine, in a child process of its own ----------

async function runBareWorker(
  config: BenchConfig,
  modelPath: string,
  concurrency: number,
): Promise<RunResult> {
  const engine = await createLlamaEngine({
    modelPath,
    parallel: concurrency,
    threads: config.threads,
    adaptiveThreads: !config.fixedThreads,
    contextPerSequence: config.contextPerSequence,
  });
  const send = async (index: number, maxTokens: number): Promise<RequestSample> => {
    const started = performance.now();
    let firstAt: number | undefined;
    const generation = engine.generate({
      prompt: promptFor(index),
      maxTokens,
      temperature: 0,
      ignoreEos: true,
    });
    for await (const chunk of generation)
      if (firstAt === undefined && chunk.text.length > 0) firstAt = performance.now();
    const result = await generation.result;
    const ended = performance.now();
    return {
      ttftMs: (firstAt ?? ended) - started,
      latencyMs: ended - started,
      tokens: result.completionTokens,
    };
  };
  await Promise.all(Array.from({ length: concurrency }, (_, index) => send(1000 + index, 8)));
  const cpuBefore = process.cpuUsage();
  const { samples, failures, wallSeconds } = await closedLoop(
    concurrency,
    requestsPerWorker(config, concurrency),
    (index) => send(index, config.maxTokens),
  );
  const cpu = process.cpuUsage(cpuBefore);
  await engine.close();
  const peak = process.resourceUsage().maxRSS / 1024;
  return {
    ...summarize("bare", concurrency, samples, wallSeconds, peak, (cpu.user + cpu.system) / 1e6, failures),
    engineBuild: engine.info.engineBuild ?? "prebuilt",
  };
}

async function runBare(config: BenchConfig, modelPath: string, concurrency: number): Promise<RunOutcome> {
  const child = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), "--bare-worker", JSON.stringify({ config, modelPath, concurrency })],
    { env: engineProcessEnv(), stdio: ["ignore", "pipe", "inherit"] },
  );
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => {
    output += text;
  });
  const code = await new Promise<number | null>((done) => child.once("exit", done));
  const line = output.trim().split("\n").pop() ?? "";
  if (code !== 0 || !line.startsWith("{"))
    return { system: "bare", concurrency, unavailable: `worker failed (${code})` };
  return JSON.parse(line) as RunResult;
}

// ---------- (b) berth serve and (c) llama-server, over HTTP ----------

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => done(typeof address === "object" && address ? address.port : 0));
    });
  });
}

function peakRssMiB(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * utime + stime of a process (all its threads) from /proc, in seconds (clock ticks of 1/100 s on
 * Linux); with `mainThread`, of its main thread alone.
 */
function cpuSecondsOf(pid: number | undefined, mainThread = false): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which is in parentheses and may contain spaces).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** One streamed /v1/completions request; TTFT is the first event that carries text. */
async function streamCompletion(
  pool: Pool,
  model: string,
  prompt: string,
  maxTokens: number,
): Promise<RequestSample> {
  const started = performance.now();
  const { statusCode, body } = await pool.request({
    path: "/v1/completions",
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model,
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      ignore_eos: true,
    }),
  });
  if (statusCode !== 200) throw failureOfAnswer(statusCode, await body.text());
  let firstAt: number | undefined;
  let usageTokens: number | undefined;
  let finishReason: string | undefined;
  let textEvents = 0;
  // An error event or a stream cut before [DONE] fails the request (with its code and message).
  const events = new SseReader((raw) => {
    const event = raw as {
      choices?: Array<{ text?: string; finish_reason?: string | null }>;
      usage?: { completion_tokens?: number } | null;
    };
    const choice = event.choices?.[0];
    if (choice?.text) {
      textEvents++;
      firstAt ??= performance.now();
    }
    if (choice?.finish_reason) finishReason = choice.finish_reason;
    if (event.usage?.completion_tokens !== undefined) usageTokens = event.usage.completion_tokens;
  });
  for await (const bytes of body) events.push(bytes as Buffer);
  events.end();
  const ended = performance.now();
  const tokens = usageTokens ?? (finishReason === "length" ? maxTokens : textEvents);
  return { ttftMs: (firstAt ?? ended) - started, latencyMs: ended - started, tokens };
}

interface HttpTarget {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  readyPath: string;
}

async function runHttp(
  system: SystemName,
  target: HttpTarget,
  port: number,
  config: BenchConfig,
  concurrency: number,
): Promise<RunOutcome> {
  const child = spawn(target.command, target.args, { env: target.env, stdio: ["ignore", "ignore", "pipe"] });
  let stderrTail = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderrTail = (stderrTail + text).slice(-2000);
  });
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency + 2 });
  try {
    await waitReady(pool, target.readyPath, child, 180_000, 200);
    const models = await pool.request({ path: "/v1/models", method: "GET" });
    const listed = (await models.body.json()) as { data?: Array<{ id: string }> };
    const model = listed.data?.[0]?.id ?? "model";
    await Promise.all(
      Array.from({ length: concurrency }, (_, index) =>
        streamCompletion(pool, model, promptFor(1000 + index), 8),
      ),
    );
    const cpuBefore = cpuSecondsOf(child.pid);
    const mainBefore = cpuSecondsOf(child.pid, true);
    const { samples, failures, wallSeconds } = await closedLoop(
      concurrency,
      requestsPerWorker(config, concurrency),
      (index) => streamCompletion(pool, model, promptFor(index), config.maxTokens),
    );
    const cpuSeconds = cpuSecondsOf(child.pid) - cpuBefore;
    const mainSeconds = cpuSecondsOf(child.pid, true) - mainBefore;
    const result = summarize(
      system,
      concurrency,
      samples,
      wallSeconds,
      peakRssMiB(child.pid),
      cpuSeconds,
      failures,
    );
    return { ...result, mainThreadCpuMsPerToken: (mainSeconds * 1000) / result.tokens };
  } catch (error) {
    const reason = `${(error as Error).message}${stderrTail ? ` — ${stderrTail.trim().split("\n").pop()}` : ""}`;
    return { system, concurrency, unavailable: reason };
  } finally {
    await pool.close();
    child.kill("SIGKILL");
    if (child.exitCode === null) await new Promise((done) => child.once("exit", done));
  }
}

function berthTarget(
  config: BenchConfig,
  modelPath: string,
  port: number,
  concurrency: number,
  openmp = false,
): HttpTarget {
  return {
    command: process.execPath,
    args: [
      join(repoRoot, "bin", "berth.js"),
      "serve",
      "--model",
      modelPath,
      "--port",
      String(port),
      "--parallel",
      String(concurrency),
      "--threads",
      String(config.threads),
      "--ctx",
      String(config.contextPerSequence),
      "--max-queue",
      String(4 * concurrency),
    ],
    env: engineProcessEnv({
      ...process.env,
      BERTH_LOG_LEVEL: "warn",
      ...(config.fixedThreads ? { BERTH_ADAPTIVE_THREADS: "0" } : {}),
      ...(openmp ? { BERTH_ENGINE_BUILD: "openmp" } : {}),
    }),
    readyPath: "/readyz",
  };
}

function llamaServerTarget(
  binary: string,
  config: BenchConfig,
  modelPath: string,
  port: number,
  concurrency: number,
): HttpTarget {
  return {
    command: binary,
    args: [
      "-m",
      modelPath,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "-t",
      String(config.threads),
      "-tb",
      String(config.threads),
      "--parallel",
      String(concurrency),
      // With an explicit --parallel, llama-server splits -c evenly over the slots (no unified KV).
      "-c",
      String(config.contextPerSequence * concurrency),
      "--no-webui",
    ],
    env: {
      ...process.env,
      LD_LIBRARY_PATH: [dirname(binary), process.env.LD_LIBRARY_PATH].filter(Boolean).join(":"),
    },
    readyPath: "/health",
  };
}

function findLlamaServer(): string | undefined {
  if (process.env.LLAMA_SERVER)
    return existsSync(process.env.LLAMA_SERVER) ? process.env.LLAMA_SERVER : undefined;
  const version = (
    JSON.parse(readFileSync(join(repoRoot, "node_modules/node-llama-cpp/package.json"), "utf8")) as {
      version: string;
    }
  ).version;
  // The cache scripts/build-llama-server.sh fills (BERTH_HOME, else ~/.cache/berth; its key names the recipe).
  const binary = join(berthHome(), "llama-server", `${version}-variants`, "bin", "llama-server");
  return existsSync(binary) ? binary : undefined;
}

function berthServeAvailable(): string | undefined {
  if (!existsSync(join(repoRoot, "dist", "cli", "main.js"))) return "not built (npm run build)";
  const help = spawnSync(process.execPath, [join(repoRoot, "bin", "berth.js"), "serve", "--help"], {
    encoding: "utf8",
  });
  return help.status === 0 ? undefined : "`berth serve` is not available in this build";
}

// ---------- report ----------

function medianRound(rounds: RunOutcome[]): RunOutcome {
  const measured = rounds.filter(isResult).sort((a, b) => a.tokensPerSecond - b.tokensPerSecond);
  return measured[Math.floor((measured.length - 1) / 2)] ?? rounds[0]!;
}

function isResult(outcome: RunOutcome | undefined): outcome is RunResult {
  return outcome !== undefined && "tokensPerSecond" in outcome;
}

function ratio(numerator: RunOutcome | undefined, denominator: RunOutcome | undefined): number | undefined {
  return isResult(numerator) && isResult(denominator)
    ? numerator.tokensPerSecond / denominator.tokensPerSecond
    : undefined;
}

/** CPU ms per token of `numerator` over `denominator`'s (lower is better). */
function cpuRatio(
  numerator: RunOutcome | undefined,
  denominator: RunOutcome | undefined,
): number | undefined {
  return isResult(numerator) && isResult(denominator)
    ? numerator.cpuMsPerToken / denominator.cpuMsPerToken
    : undefined;
}

/** Which engine binary berth and bare ran (the bare worker reports it). */
function engineNote(outcomes: RunOutcome[]): string {
  const build = outcomes.find((outcome) => isResult(outcome) && outcome.engineBuild) as RunResult | undefined;
  if (!build?.engineBuild) return "";
  return build.engineBuild === "openmp"
    ? " Engine of bare and berth: the OpenMP build (scripts/build-engine.sh, BERTH_ENGINE_BUILD=openmp)."
    : " Engine of bare and berth: node-llama-cpp's prebuilt binary; berth-openmp: scripts/build-engine.sh's OpenMP build.";
}

const format = (value: number | undefined, digits = 0) =>
  value === undefined || Number.isNaN(value) ? "–" : value.toFixed(digits);

function markdown(config: BenchConfig, outcomes: RunOutcome[]): { table: string; targets: TargetCheck[] } {
  const find = (system: SystemName, concurrency: number) =>
    outcomes.find((outcome) => outcome.system === system && outcome.concurrency === concurrency);
  const lines = [
    `Model ${config.shape} ${config.dtype}, ${config.maxTokens} new tokens (greedy, ignore_eos), ${config.threads} threads, ` +
      `${config.contextPerSequence} tokens of context per slot, slots = concurrency` +
      (config.neighbour ? ", a noisy neighbour burning one CPU beside each system" : "") +
      (config.fixedThreads ? ", Berth's thread count fixed (no adaptive threads)" : "") +
      (config.repeat > 1 ? `, median of ${config.repeat} alternating rounds.` : ".") +
      engineNote(outcomes),
    "",
    "| c | system | gen tok/s | TTFT p50 ms | TTFT p95 ms | latency p50 ms | latency p95 ms | peak RSS MiB | CPU ms/tok | ×bare | ×llama-server | CPU ×llama-server |",
    "| --: | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const concurrency of config.concurrency) {
    for (const system of SYSTEMS) {
      const outcome = find(system, concurrency);
      if (!outcome) continue;
      if (!isResult(outcome)) {
        lines.push(
          `| ${concurrency} | ${system} | unavailable: ${outcome.unavailable.replaceAll("|", "/")} | | | | | | | | | |`,
        );
        continue;
      }
      const vsBare = system === "bare" ? undefined : ratio(outcome, find("bare", concurrency));
      const vsLlama =
        system === "llama-server" ? undefined : ratio(outcome, find("llama-server", concurrency));
      const cpuVsLlama =
        system === "llama-server" ? undefined : cpuRatio(outcome, find("llama-server", concurrency));
      lines.push(
        `| ${concurrency} | ${system} | ${format(outcome.tokensPerSecond, 1)} | ${format(outcome.ttftMs.p50)} | ` +
          `${format(outcome.ttftMs.p95)} | ${format(outcome.latencyMs.p50)} | ${format(outcome.latencyMs.p95)} | ` +
          `${format(outcome.peakRssMiB)} | ${format(outcome.cpuMsPerToken, 2)} | ${format(vsBare, 2)} | ${format(vsLlama, 2)} | ${format(cpuVsLlama, 2)} |`,
      );
    }
  }
  const targets = targetChecks(config).map((check) => {
    const berth = find("berth", check.concurrency);
    const against = find(check.against, check.concurrency);
    const measured = check.metric === "cpu" ? cpuRatio(berth, against) : ratio(berth, against);
    const met =
      measured === undefined
        ? undefined
        : check.metric === "cpu"
          ? measured <= check.bound
          : measured >= check.bound;
    return { ...check, measured, met };
  });
  lines.push("", "| target | measured | met |", "| --- | --: | --- |");
  for (const check of targets) {
    const met = check.met === undefined ? "not measured" : check.met ? "yes" : "no";
    lines.push(`| ${check.target} | ${format(check.measured, 2)} | ${met} |`);
  }
  return { table: lines.join("\n"), targets };
}

interface TargetCheck {
  target: string;
  concurrency: number;
  against: SystemName;
  /** tok/s ratio (at least `bound`) or CPU ms per token ratio (at most `bound`). */
  metric: "throughput" | "cpu";
  bound: number;
  measured?: number | undefined;
  met?: boolean | undefined;
}

/** Issue 13's targets; with the noisy neighbour, its own (every concurrency of the run). */
function targetChecks(config: BenchConfig): TargetCheck[] {
  if (config.neighbour) {
    return config.concurrency.flatMap((concurrency): TargetCheck[] => [
      {
        target: `neighbour, c=${concurrency}: berth ≥ 0.95× llama-server`,
        concurrency,
        against: "llama-server",
        metric: "throughput",
        bound: 0.95,
      },
      {
        target: `neighbour, c=${concurrency}: berth CPU ms/token ≤ 1.2× llama-server's`,
        concurrency,
        against: "llama-server",
        metric: "cpu",
        bound: 1.2,
      },
    ]);
  }
  return [
    {
      target: "c=1: berth ≥ 0.97× bare engine",
      concurrency: 1,
      against: "bare",
      metric: "throughput",
      bound: 0.97,
    },
    {
      target: "c=1: berth ≥ 1.0× llama-server",
      concurrency: 1,
      against: "llama-server",
      metric: "throughput",
      bound: 1.0,
    },
    {
      target: "c=8: berth ≥ 1.05× llama-server",
      concurrency: 8,
      against: "llama-server",
      metric: "throughput",
      bound: 1.05,
    },
    {
      target: "c=16: berth ≥ 1.05× llama-server",
      concurrency: 16,
      against: "llama-server",
      metric: "throughput",
      bound: 1.05,
    },
  ];
}

// ---------- main ----------

function configFrom(argv: string[]): BenchConfig {
  const smoke = argv.includes("--smoke") || process.env.BENCH_SMOKE === "1";
  const listed = argv.find((arg) => arg.startsWith("--concurrency="))?.split("=")[1];
  const systems = argv.find((arg) => arg.startsWith("--systems="))?.split("=")[1];
  const repeat = Number(argv.find((arg) => arg.startsWith("--repeat="))?.split("=")[1] ?? 1);
  const perWorkerArg = argv.find((arg) => arg.startsWith("--per-worker="))?.split("=")[1];
  const perWorker = perWorkerArg === undefined ? undefined : Number(perWorkerArg);
  // Smoke runs on CI machines shared with other jobs: one thread avoids OpenMP barriers waiting on
  // the scheduler, which make a busy 2-core machine 10x slower. Full runs use the physical cores.
  const threads = Number(process.env.BENCH_THREADS ?? (smoke ? 1 : physicalCores()));
  return {
    smoke,
    repeat: Number.isInteger(repeat) && repeat > 0 ? repeat : 1,
    systems: systems
      ? SYSTEMS.filter((system) => systems.split(",").includes(system))
      : SYSTEMS.filter((system) => system !== "berth-openmp"),
    shape: smoke ? "tiny" : "gpt2-124m",
    dtype: "q8_0",
    maxTokens: smoke ? 16 : 128,
    concurrency: listed ? listed.split(",").map(Number) : smoke ? [1, 4] : [1, 4, 8, 16],
    threads,
    contextPerSequence: smoke ? 256 : 1024,
    neighbour: argv.includes("--neighbour"),
    fixedThreads: argv.includes("--fixed-threads"),
    perWorker:
      perWorker !== undefined && Number.isInteger(perWorker) && perWorker > 0 ? perWorker : undefined,
  };
}

/** Physical cores as llama.cpp counts them (logical CPUs / threads per core from sysfs), else logical. */
function physicalCores(): number {
  try {
    const siblings = readFileSync(
      "/sys/devices/system/cpu/cpu0/topology/thread_siblings_list",
      "utf8",
    ).trim();
    const perCore = siblings.split(",").reduce((count, part) => {
      const [from, to] = part.split("-").map(Number);
      return count + (to === undefined ? 1 : to - from! + 1);
    }, 0);
    return Math.max(1, Math.floor(cpus().length / Math.max(1, perCore)));
  } catch {
    return cpus().length;
  }
}

/** One system's run, with the noisy neighbour burning one CPU from before its start to after its end. */
async function runSystem(
  system: SystemName,
  config: BenchConfig,
  modelPath: string,
  concurrency: number,
  available: { llamaServer: string | undefined; berthUnavailable: string | undefined },
): Promise<RunOutcome> {
  if (!config.neighbour) return runSystemAlone(system, config, modelPath, concurrency, available);
  const neighbour = startNeighbour();
  try {
    return await runSystemAlone(system, config, modelPath, concurrency, available);
  } finally {
    await neighbour.stop();
  }
}

async function runSystemAlone(
  system: SystemName,
  config: BenchConfig,
  modelPath: string,
  concurrency: number,
  available: { llamaServer: string | undefined; berthUnavailable: string | undefined },
): Promise<RunOutcome> {
  if (system === "bare") return runBare(config, modelPath, concurrency);
  const port = await freePort();
  if (system === "berth" || system === "berth-openmp") {
    if (available.berthUnavailable) return { system, concurrency, unavailable: available.berthUnavailable };
    const target = berthTarget(config, modelPath, port, concurrency, system === "berth-openmp");
    return runHttp(system, target, port, config, concurrency);
  }
  if (!available.llamaServer) {
    return {
      system,
      concurrency,
      unavailable: "not built (scripts/build-llama-server.sh, or set LLAMA_SERVER)",
    };
  }
  const target = llamaServerTarget(available.llamaServer, config, modelPath, port, concurrency);
  return runHttp(system, target, port, config, concurrency);
}

async function main(argv: string[]): Promise<void> {
  const workerAt = argv.indexOf("--bare-worker");
  if (workerAt !== -1) {
    const { config, modelPath, concurrency } = JSON.parse(argv[workerAt + 1]!) as {
      config: BenchConfig;
      modelPath: string;
      concurrency: number;
    };
    process.stdout.write(`${JSON.stringify(await runBareWorker(config, modelPath, concurrency))}\n`);
    return;
  }

  const config = configFrom(argv);
  const startedAt = new Date();
  console.error(`bench:serve ${config.smoke ? "(smoke) " : ""}— preparing ${config.shape} ${config.dtype}`);
  const modelPath = await ensureTinyModel({ shape: config.shape, dtype: config.dtype });
  const llamaServer = findLlamaServer();
  const berthUnavailable = berthServeAvailable();
  const loadBefore = loadavg();

  const outcomes: RunOutcome[] = [];
  const allRuns: RunOutcome[] = [];
  // --cold-start-only: only the cold-start rows; --no-cold-start: only the throughput rows.
  const coldStartOnly = argv.includes("--cold-start-only");
  for (const concurrency of coldStartOnly ? [] : config.concurrency) {
    // Rounds alternate the systems, so a burst of load from elsewhere hits them alike; each system's
    // median round (by tok/s) is reported, every round is kept in the JSON.
    const rounds: RunOutcome[] = [];
    for (let round = 1; round <= config.repeat; round++) {
      for (const system of config.systems) {
        console.error(`  c=${concurrency}: ${system}${config.repeat > 1 ? ` (round ${round})` : ""}`);
        rounds.push(
          await runSystem(system, config, modelPath, concurrency, { llamaServer, berthUnavailable }),
        );
      }
    }
    allRuns.push(...rounds);
    for (const system of config.systems)
      outcomes.push(medianRound(rounds.filter((run) => run.system === system)));
  }

  const coldRounds: ColdStartOutcome[] = [];
  if (!argv.includes("--no-cold-start")) {
    for (let round = 1; round <= config.repeat; round++) {
      for (const system of config.systems) {
        if (system === "bare") continue;
        console.error(`  cold start: ${system}${config.repeat > 1 ? ` (round ${round})` : ""}`);
        const unavailable =
          system === "llama-server" ? (llamaServer ? undefined : "llama-server not built") : berthUnavailable;
        if (unavailable) {
          coldRounds.push({ system, unavailable });
          continue;
        }
        const targetFor = (port: number) => {
          if (system === "llama-server") return llamaServerTarget(llamaServer!, config, modelPath, port, 1);
          // As a shell or an image without ENV starts it: bin/berth.js sizes the thread pool itself.
          const { UV_THREADPOOL_SIZE: _, ...env } = process.env;
          const openmp = system === "berth-openmp";
          return {
            ...berthTarget(config, modelPath, port, 1, openmp),
            env: { ...env, BERTH_LOG_LEVEL: "info", ...(openmp ? { BERTH_ENGINE_BUILD: "openmp" } : {}) },
          };
        };
        // Berth serves the file name without .gguf; llama-server answers to any name.
        const model = basename(modelPath).replace(/\.gguf$/i, "");
        coldRounds.push(await measureColdStart(system, targetFor, freePort, { model, prompt: promptFor(0) }));
      }
    }
  }
  const coldStart = coldStartTable(coldRounds, statSync(modelPath).size);

  const { table, targets } = markdown(config, outcomes);
  console.log(table);
  if (coldRounds.length > 0) console.log(`\n${coldStart.lines.join("\n")}`);
  // Every round's failures, not only the median round's: a failure anywhere is reported.
  const withFailures = allRuns.filter((run) => isResult(run) && run.failures.length > 0) as RunResult[];
  if (withFailures.length > 0) {
    console.log("\nFailed requests (status, error code and message as the client got them):\n");
    console.log(FAILURE_TABLE_HEAD.join("\n"));
    for (const run of withFailures)
      console.log(failureRows(run.failures, `c=${run.concurrency} ${run.system}`).join("\n"));
  }
  const load = { before: loadBefore, after: loadavg() };
  // The run itself keeps about `threads` cores busy; load beyond that at the start came from elsewhere.
  if ((load.before[0] ?? 0) > 1.5) {
    console.log(
      `\nNote: the machine was busy (load average ${load.before[0]?.toFixed(1)} when the run started ` +
        `on ${cpus().length} CPUs); numbers are lower and noisier than on an idle machine.`,
    );
  }
  const stamp = startedAt.toISOString().replace(/:/g, "-").replace(/\..+$/, "");
  const directory = join(repoRoot, "bench", "results");
  mkdirSync(directory, { recursive: true });
  const file = join(directory, `serve-${config.smoke ? "smoke-" : ""}${stamp}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        benchmark: "serve",
        startedAt: startedAt.toISOString(),
        config,
        machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: totalmem() / 2 ** 30, load },
        llamaServer: llamaServer ?? null,
        results: outcomes,
        rounds: allRuns,
        coldStart: { results: coldStart.results, rounds: coldRounds },
        targets,
      },
      null,
      2,
    )}\n`,
  );
  console.error(`wrote ${file}`);
  const failed = outcomes.filter((outcome) => !isResult(outcome) && outcome.system === "bare");
  // A built `berth serve` that cannot cold-start and answer is a failure of the run, as a bare one is.
  const coldFailed = coldRounds.some(
    (round) => round.system === "berth" && "unavailable" in round && !berthUnavailable,
  );
  if (failed.length > 0 || withFailures.length > 0 || coldFailed) process.exitCode = 1;
}

await main(process.argv.slice(2));
