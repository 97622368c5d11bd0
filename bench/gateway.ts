// `npm run bench:gateway`: (a) the gateway's added latency (p50, p99) and requests/s against calling
// a replica directly and against nginx proxying to the same replica; (b) routing quality over 4
// replicas: p95 TTFT of least-load vs round-robin on a bursty short/long mix, and prefix-hash vs
// least-load on requests sharing long prefixes. Smoke mode (BENCH_SMOKE=1 or --smoke): small sizes.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import { engineProcessEnv } from "../src/engine/process.js";
import { ensureTinyModel, type TinyShapeName } from "../src/models/tiny.js";
import {
  asFailedRequest,
  FAILURE_TABLE_HEAD,
  type FailedRequest,
  failureOfAnswer,
  failureRows,
  SseReader,
} from "./failures.js";
import { machineOf, publishResults, REPO_ROOT } from "./report.js";

const MODEL = "tiny";
const here = dirname(fileURLToPath(import.meta.url));

interface BenchConfig {
  smoke: boolean;
  overhead: {
    warmup: number;
    rounds: number;
    sequential: number;
    throughputRequests: number;
    concurrency: number;
    generate: number;
  };
  burst: {
    bursts: number;
    size: number;
    gapMs: number;
    longShare: number;
    longTokens: number;
    shortTokens: number;
  };
  prefix: {
    shape: TinyShapeName;
    /** Slots per replica: affinity pays when a replica's share of prefixes fits its slots. */
    parallel: number;
    groups: number;
    prefixSentences: number;
    requests: number;
    concurrency: number;
  };
}

function configFor(smoke: boolean): BenchConfig {
  return smoke
    ? {
        smoke,
        overhead: {
          warmup: 100,
          rounds: 3,
          sequential: 300,
          throughputRequests: 1_000,
          concurrency: 16,
          generate: 20,
        },
        burst: { bursts: 4, size: 8, gapMs: 600, longShare: 0.25, longTokens: 200, shortTokens: 4 },
        prefix: { shape: "tiny", parallel: 4, groups: 4, prefixSentences: 50, requests: 24, concurrency: 4 },
      }
    : {
        smoke,
        overhead: {
          warmup: 500,
          rounds: 10,
          sequential: 5_000,
          throughputRequests: 10_000,
          concurrency: 32,
          generate: 200,
        },
        burst: { bursts: 16, size: 8, gapMs: 1_000, longShare: 0.25, longTokens: 800, shortTokens: 4 },
        prefix: {
          shape: "gpt2-124m",
          parallel: 4,
          groups: 4,
          prefixSentences: 25,
          requests: 48,
          concurrency: 4,
        },
      };
}

// ---------- processes: replicas, gateways, nginx ----------

interface Started {
  url: string;
  child: ChildProcess;
  /** Prompt tokens the replica reported, and how many of them came from its KV cache (when counted). */
  promptTokens: { total: number; cached: number };
}

const children: ChildProcess[] = [];

function stopAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}
process.once("exit", stopAll);
process.once("SIGINT", () => {
  stopAll();
  process.exit(130);
});

/** Spawns a process in its own group and resolves the URL it prints (a JSON line with `url`). */
async function spawnWithUrl(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  urlOf: (line: Record<string, unknown>) => string | undefined,
  countPromptTokens = false,
): Promise<Started> {
  const promptTokens = { total: 0, cached: 0 };
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr = (stderr + text).slice(-4_000);
  });
  const url = await new Promise<string>((done, fail) => {
    let buffered = "";
    const timer = setTimeout(() => fail(new Error(`${args.join(" ")} did not start\n${stderr}`)), 120_000);
    child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      buffered += text;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        try {
          const found = urlOf(JSON.parse(line) as Record<string, unknown>);
          if (found) {
            clearTimeout(timer);
            // From here on the output is drained unread: parsing a replica's request log lines
            // would load this process, which is the load generator and the stopwatch. Only the
            // prefix workload (few, slow requests) reads them, for the KV cache reuse they report.
            child.stdout?.removeAllListeners("data");
            if (countPromptTokens) countPromptTokensFrom(child, promptTokens);
            else child.stdout?.resume();
            done(found);
            return;
          }
        } catch {
          // Not JSON.
        }
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`${args.join(" ")} exited with ${code}\n${stderr}`));
    });
  });
  return { url, child, promptTokens };
}

function countPromptTokensFrom(child: ChildProcess, counts: Started["promptTokens"]): void {
  let buffered = "";
  child.stdout?.on("data", (text: string) => {
    buffered += text;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (!line.includes('"promptTokens"')) continue;
      try {
        const entry = JSON.parse(line) as { promptTokens?: number; cachedPromptTokens?: number };
        counts.total += entry.promptTokens ?? 0;
        counts.cached += entry.cachedPromptTokens ?? 0;
      } catch {
        // Not a request line.
      }
    }
  });
}

function startReplica(modelPath: string, parallel: number, countPromptTokens = false): Promise<Started> {
  return spawnWithUrl(
    process.execPath,
    [
      "bin/berth.js",
      "serve",
      "--model",
      modelPath,
      "--model-id",
      MODEL,
      "--port",
      "0",
      "--parallel",
      String(parallel),
      "--threads",
      "1",
      "--request-timeout",
      "600s",
    ],
    // Info: the "ready" line is an info line. Request log lines cost the same for every target.
    { ...engineProcessEnv(), BERTH_LOG_LEVEL: "info" },
    (line) => (line.msg === "ready" && typeof line.url === "string" ? line.url : undefined),
    countPromptTokens,
  );
}

function startGateway(
  strategy: string,
  replicas: Started[],
  tuning: { leastLoadChoices?: number; loadFactor?: number } = {},
): Promise<Started> {
  const config = {
    model: MODEL,
    strategy,
    upstreams: replicas.map((replica, index) => ({ id: `r${index + 1}`, url: replica.url })),
    ...tuning,
  };
  return spawnWithUrl(
    process.execPath,
    [join(here, "gateway-process.js"), JSON.stringify(config)],
    process.env,
    (line) => (typeof line.url === "string" ? line.url : undefined),
  );
}

function nginxAvailable(): boolean {
  return spawnSync("nginx", ["-v"], { stdio: "ignore" }).status === 0;
}

async function startNginx(replicaUrl: string): Promise<Started> {
  const directory = mkdtempSync(join(tmpdir(), "berth-bench-nginx-"));
  const port = await freePort();
  const upstream = new URL(replicaUrl).host;
  // One worker (the gateway is one event loop too), keep-alive to the replica, no buffering of
  // responses (streams pass through as with the gateway), no access log (the gateway writes none).
  const conf = `
worker_processes 1;
daemon off;
pid ${directory}/nginx.pid;
error_log ${directory}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${directory}/body;
  proxy_temp_path ${directory}/proxy;
  fastcgi_temp_path ${directory}/fastcgi;
  uwsgi_temp_path ${directory}/uwsgi;
  scgi_temp_path ${directory}/scgi;
  upstream replica { server ${upstream}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://replica;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`;
  const confPath = join(directory, "nginx.conf");
  writeFileSync(confPath, conf);
  const child = spawn("nginx", ["-c", confPath, "-p", directory, "-e", join(directory, "error.log")], {
    detached: true,
    stdio: "ignore",
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`);
  return { url, child, promptTokens: { total: 0, cached: 0 } };
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => done(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function waitForHttp(url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.status < 500) return;
    } catch {
      // Not up yet.
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

async function stop(started: Started): Promise<void> {
  if (started.child.exitCode !== null || started.child.signalCode !== null) return;
  const exited = once(started.child, "exit");
  try {
    process.kill(-started.child.pid!, "SIGKILL");
  } catch {
    return;
  }
  await exited;
}

// ---------- measurement ----------

function percentile(values: number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank]!;
}

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
}

/** A request the replica answers without touching the engine (400 from validation): pure HTTP cost. */
const CHEAP_BODY = JSON.stringify({ model: MODEL, prompt: "x", max_tokens: 0 });
const GENERATE_BODY = JSON.stringify({ model: MODEL, prompt: "Hello", max_tokens: 1, temperature: 0 });

async function timedPost(pool: Pool, body: string, expectedStatus: number): Promise<number> {
  const started = performance.now();
  const response = await pool.request({
    method: "POST",
    path: "/v1/completions",
    headers: { "content-type": "application/json" },
    body,
  });
  const text = await response.body.text();
  const elapsed = performance.now() - started;
  // A proxy that answers with its own error page would look fast: only the replica's answer counts.
  if (
    response.statusCode !== expectedStatus ||
    !text.includes(expectedStatus === 200 ? '"choices"' : "BERTH_")
  ) {
    throw new Error(`unexpected answer ${response.statusCode}: ${text.slice(0, 200)}`);
  }
  return elapsed;
}

interface OverheadResult {
  target: "direct" | "gateway" | "nginx";
  latencyMs: { p50: number; p99: number; mean: number };
  requestsPerSecond: number;
  generateMs: { p50: number; p99: number };
}

/**
 * Measures every target in rounds, rotating their order each round, so slow drifts of a shared,
 * busy machine (other processes, JIT warm-up, CPU frequency) spread over all targets alike.
 */
async function measureOverhead(
  targets: Array<{ target: OverheadResult["target"]; url: string }>,
  config: BenchConfig["overhead"],
): Promise<OverheadResult[]> {
  const state = targets.map(({ target, url }) => ({
    target,
    pool: new Pool(url, { connections: config.concurrency, pipelining: 1 }),
    latencies: [] as number[],
    generate: [] as number[],
    throughputSeconds: 0,
    throughputRequests: 0,
  }));
  for (const entry of state) {
    for (let i = 0; i < config.warmup; i++) await timedPost(entry.pool, CHEAP_BODY, 400);
  }
  for (let round = 0; round < config.rounds; round++) {
    const order = state.map((_, index) => state[(index + round) % state.length]!);
    for (const entry of order) {
      for (let i = 0; i < config.sequential / config.rounds; i++) {
        entry.latencies.push(await timedPost(entry.pool, CHEAP_BODY, 400));
      }
      const requests = Math.ceil(config.throughputRequests / config.rounds);
      let sent = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: config.concurrency }, async () => {
          while (sent < requests) {
            sent++;
            await timedPost(entry.pool, CHEAP_BODY, 400);
          }
        }),
      );
      entry.throughputSeconds += (performance.now() - started) / 1000;
      entry.throughputRequests += requests;
    }
  }
  // Generation last: the engine's worker threads spin on the CPUs for a while after a decode, which
  // would slow whichever target the rounds measured next.
  for (const entry of state) {
    for (let i = 0; i < config.generate; i++)
      entry.generate.push(await timedPost(entry.pool, GENERATE_BODY, 200));
  }
  await Promise.all(state.map((entry) => entry.pool.close()));
  return state.map((entry) => ({
    target: entry.target,
    latencyMs: {
      p50: percentile(entry.latencies, 0.5),
      p99: percentile(entry.latencies, 0.99),
      mean: mean(entry.latencies),
    },
    requestsPerSecond: entry.throughputRequests / entry.throughputSeconds,
    generateMs: { p50: percentile(entry.generate, 0.5), p99: percentile(entry.generate, 0.99) },
  }));
}

interface StreamSample {
  kind: string;
  ttftMs: number;
  latencyMs: number;
}

/** A streamed completion; TTFT is the time to the first SSE event that carries text. */
async function streamCompletion(
  pool: Pool,
  body: Record<string, unknown>,
  kind: string,
): Promise<StreamSample> {
  const started = performance.now();
  const response = await pool.request({
    method: "POST",
    path: "/v1/completions",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...body, model: MODEL, stream: true }),
  });
  if (response.statusCode !== 200) throw failureOfAnswer(response.statusCode, await response.body.text());
  let firstAt: number | undefined;
  // An error event or a stream cut before [DONE] is a failed request, not a fast one.
  const events = new SseReader();
  for await (const chunk of response.body) {
    if (firstAt === undefined && (chunk as Buffer).includes('"text":"')) firstAt = performance.now();
    events.push(chunk as Buffer);
  }
  events.end();
  const ended = performance.now();
  return { kind, ttftMs: (firstAt ?? ended) - started, latencyMs: ended - started };
}

/** Deterministic pseudo-random numbers (the same workload for every strategy). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

interface StrategyResult {
  workload: "bursty" | "shared-prefix";
  strategy: string;
  requests: number;
  failed: number;
  /** Each failed request's status, code and message. */
  failures: FailedRequest[];
  wallSeconds: number;
  ttftMs: { p50: number; p95: number; mean: number };
  shortTtftMs?: { p50: number; p95: number };
  /** Share of prompt tokens the replicas served from their KV cache (shared-prefix workload). */
  promptTokensReused?: number;
}

function summarizeStreams(
  workload: StrategyResult["workload"],
  strategy: string,
  samples: StreamSample[],
  failures: FailedRequest[],
  wallSeconds: number,
): StrategyResult {
  const ttft = samples.map((sample) => sample.ttftMs);
  const short = samples.filter((sample) => sample.kind === "short").map((sample) => sample.ttftMs);
  return {
    workload,
    strategy,
    requests: samples.length + failures.length,
    failed: failures.length,
    failures,
    wallSeconds,
    ttftMs: { p50: percentile(ttft, 0.5), p95: percentile(ttft, 0.95), mean: mean(ttft) },
    ...(short.length > 0
      ? { shortTtftMs: { p50: percentile(short, 0.5), p95: percentile(short, 0.95) } }
      : {}),
  };
}

/** Bursts of requests on a fixed schedule (open loop), a share of them long. */
async function runBursty(
  url: string,
  strategy: string,
  config: BenchConfig["burst"],
): Promise<StrategyResult> {
  const pool = new Pool(url, { connections: config.bursts * config.size });
  const random = seeded(42);
  const samples: StreamSample[] = [];
  const failures: FailedRequest[] = [];
  const pending: Array<Promise<void>> = [];
  const started = performance.now();
  for (let burst = 0; burst < config.bursts; burst++) {
    const due = started + burst * config.gapMs;
    await new Promise((done) => setTimeout(done, Math.max(0, due - performance.now())));
    for (let index = 0; index < config.size; index++) {
      const long = random() < config.longShare;
      const body = {
        prompt: `Request ${burst}-${index}: tell me about the harbour`,
        max_tokens: long ? config.longTokens : config.shortTokens,
        ignore_eos: true,
        temperature: 0,
      };
      pending.push(
        streamCompletion(pool, body, long ? "long" : "short").then(
          (sample) => void samples.push(sample),
          (error) => void failures.push(asFailedRequest(error, long ? "long" : "short")),
        ),
      );
    }
  }
  await Promise.all(pending);
  const wallSeconds = (performance.now() - started) / 1000;
  await pool.close();
  return summarizeStreams("bursty", strategy, samples, failures, wallSeconds);
}

const SENTENCES = [
  "The harbour master kept a ledger of every ship that came into port.",
  "Each entry named the vessel, its cargo and the port it had sailed from.",
  "In winter the ledger grew thin, and in summer it filled a page a day.",
  "Fishermen argued about the tides while the gulls argued about the fish.",
  "A lighthouse keeper wrote letters he never sent to a sister inland.",
  "The customs house smelled of tar, wet wool and strong black tea.",
  "Children counted masts from the sea wall and were always wrong.",
  "Every evening the bell rang twice, once for the ships and once for luck.",
];

/** Requests drawn from a few long shared prefixes ("documents"), each with its own question. */
async function runSharedPrefix(
  url: string,
  strategy: string,
  config: BenchConfig["prefix"],
  salt: string,
): Promise<StrategyResult> {
  const random = seeded(7);
  const prefixes = Array.from({ length: config.groups }, (_, group) => {
    const sentences = Array.from(
      { length: config.prefixSentences },
      (_, index) => SENTENCES[(group * 3 + index * 5) % SENTENCES.length],
    );
    // The salt differs per strategy, so no run reuses KV cache that an earlier run left behind.
    return `Document ${salt}-${group}. ${sentences.join(" ")}\n\n`;
  });
  const requests = Array.from({ length: config.requests }, (_, index) => {
    const group = Math.floor(random() * config.groups);
    return { prompt: `${prefixes[group]}Question ${index}: what did the ledger say?`, max_tokens: 4 };
  });
  const pool = new Pool(url, { connections: config.concurrency });
  const samples: StreamSample[] = [];
  const failures: FailedRequest[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: config.concurrency }, async () => {
      while (next < requests.length) {
        const request = requests[next++]!;
        await streamCompletion(pool, { ...request, temperature: 0, ignore_eos: true }, "shared").then(
          (sample) => void samples.push(sample),
          (error) => void failures.push(asFailedRequest(error, "shared")),
        );
      }
    }),
  );
  const wallSeconds = (performance.now() - started) / 1000;
  await pool.close();
  return summarizeStreams("shared-prefix", strategy, samples, failures, wallSeconds);
}

// ---------- report ----------

interface TargetCheck {
  target: string;
  value: string;
  met: boolean;
}

function fmt(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}

function report(
  config: BenchConfig,
  overhead: OverheadResult[],
  nginxNote: string | undefined,
  routing: StrategyResult[],
): { markdown: string; targets: TargetCheck[] } {
  const direct = overhead.find((result) => result.target === "direct");
  const gateway = overhead.find((result) => result.target === "gateway");
  const nginx = overhead.find((result) => result.target === "nginx");
  const lines: string[] = [];
  lines.push(`# bench:gateway${config.smoke ? " (smoke)" : ""}`, "");
  lines.push(
    `(a) Proxy cost on one replica (tiny model). Cheap request: a POST /v1/completions the replica rejects ` +
      `in validation (no engine work), so the HTTP path is all there is; ${config.overhead.sequential} sequential ` +
      `requests for latency, ${config.overhead.throughputRequests} at concurrency ${config.overhead.concurrency} for ` +
      `requests/s. "generate" is max_tokens 1 (${config.overhead.generate} sequential).`,
    "",
  );
  lines.push(
    "| target | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s | req/s vs nginx | generate p50 ms |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const result of overhead) {
    const addedP50 = direct ? result.latencyMs.p50 - direct.latencyMs.p50 : Number.NaN;
    const addedP99 = direct ? result.latencyMs.p99 - direct.latencyMs.p99 : Number.NaN;
    lines.push(
      `| ${result.target} | ${fmt(result.latencyMs.p50, 3)} | ${fmt(result.latencyMs.p99, 3)} | ` +
        `${result.target === "direct" ? "–" : fmt(addedP50, 3)} | ${result.target === "direct" ? "–" : fmt(addedP99, 3)} | ` +
        `${fmt(result.requestsPerSecond, 0)} | ${nginx ? fmt(result.requestsPerSecond / nginx.requestsPerSecond) : "n/a"} | ` +
        `${fmt(result.generateMs.p50, 2)} |`,
    );
  }
  if (nginxNote) lines.push("", `nginx: ${nginxNote}`);
  lines.push("", "(b) Routing quality over 4 replicas (TTFT measured by the client, streamed requests).", "");
  lines.push(
    "| workload | strategy | requests | failed | TTFT p50 ms | TTFT p95 ms | TTFT mean ms | short TTFT p95 ms | prompt tokens from KV cache | wall s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const result of routing) {
    lines.push(
      `| ${result.workload} | ${result.strategy} | ${result.requests} | ${result.failed} | ${fmt(result.ttftMs.p50, 1)} | ` +
        `${fmt(result.ttftMs.p95, 1)} | ${fmt(result.ttftMs.mean, 1)} | ${result.shortTtftMs ? fmt(result.shortTtftMs.p95, 1) : "–"} | ` +
        `${result.promptTokensReused === undefined ? "–" : `${fmt(result.promptTokensReused * 100, 0)} %`} | ` +
        `${fmt(result.wallSeconds, 1)} |`,
    );
  }
  const failed = routing.filter((result) => result.failures.length > 0);
  if (failed.length > 0) {
    lines.push("", "Failed requests (status, error code and message as the client got them):", "");
    lines.push(...FAILURE_TABLE_HEAD);
    for (const result of failed)
      lines.push(...failureRows(result.failures, `${result.workload} / ${result.strategy}`));
  }
  const find = (workload: string, strategy: string) =>
    routing.find((result) => result.workload === workload && result.strategy === strategy);
  const burstLeast = find("bursty", "least-load");
  const burstRound = find("bursty", "round-robin");
  const prefixHash = find("shared-prefix", "prefix-hash");
  const prefixLeast = find("shared-prefix", "least-load");
  const targets: TargetCheck[] = [];
  if (direct && gateway) {
    const added = gateway.latencyMs.p50 - direct.latencyMs.p50;
    targets.push({ target: "gateway added p50 ≤ 1 ms", value: `${fmt(added, 3)} ms`, met: added <= 1 });
  }
  if (gateway && nginx) {
    const ratio = gateway.requestsPerSecond / nginx.requestsPerSecond;
    targets.push({ target: "gateway req/s ≥ 0.5 × nginx", value: `${fmt(ratio)} ×`, met: ratio >= 0.5 });
  }
  if (burstLeast && burstRound) {
    const ratio = burstLeast.ttftMs.p95 / burstRound.ttftMs.p95;
    targets.push({
      target: "least-load p95 TTFT ≤ 0.7 × round-robin",
      value: `${fmt(ratio)} ×`,
      met: ratio <= 0.7,
    });
  }
  if (prefixHash && prefixLeast) {
    const ratio = prefixHash.ttftMs.mean / prefixLeast.ttftMs.mean;
    targets.push({
      target: "prefix-hash faster than least-load on shared prefixes (mean TTFT)",
      value: `${fmt(ratio)} ×`,
      met: ratio < 1,
    });
  }
  lines.push("", "| target | measured | met |", "| --- | --- | --- |");
  for (const target of targets)
    lines.push(`| ${target.target} | ${target.value} | ${target.met ? "yes" : "no"} |`);
  return { markdown: lines.join("\n"), targets };
}

async function runOverheadPart(
  config: BenchConfig,
  tinyPath: string,
  overhead: OverheadResult[],
): Promise<string | undefined> {
  console.error("(a) proxy cost: one replica, direct / gateway / nginx");
  const replica = await startReplica(tinyPath, 4);
  const gateway = await startGateway("least-load", [replica]);
  const targets: Array<{ target: OverheadResult["target"]; url: string }> = [
    { target: "direct", url: replica.url },
    { target: "gateway", url: gateway.url },
  ];
  let nginxNote: string | undefined;
  let nginx: Started | undefined;
  if (nginxAvailable()) {
    try {
      nginx = await startNginx(replica.url);
      targets.push({ target: "nginx", url: nginx.url });
    } catch (error) {
      nginxNote = `could not run (${(error as Error).message.split("\n")[0]})`;
    }
  } else {
    nginxNote = "not installed; skipped";
  }
  overhead.push(...(await measureOverhead(targets, config.overhead)));
  await stop(gateway);
  if (nginx) await stop(nginx);
  await stop(replica);
  return nginxNote;
}

/** The strategies compared on the bursty mix: what a Kubernetes Service does, and least-load. */
const BURSTY_VARIANTS = [
  { label: "round-robin", strategy: "round-robin" },
  // The gateway's default: with 4 replicas it compares all of them (see EXACT_LEAST_LOAD_UP_TO).
  { label: "least-load", strategy: "least-load" },
  // Power of two choices, for comparison.
  { label: "least-load (P2C)", strategy: "least-load", choices: 2 },
] as const;

/** On requests sharing long prefixes: least-load, and prefix-hash with the spec's default bound and a looser one. */
const PREFIX_VARIANTS = [
  { label: "least-load", strategy: "least-load" },
  { label: "prefix-hash", strategy: "prefix-hash" },
  { label: "prefix-hash (loadFactor 2)", strategy: "prefix-hash", loadFactor: 2 },
] as const;

async function runRoutingPart(
  config: BenchConfig,
  tinyPath: string,
  routing: StrategyResult[],
  parts: { bursty: boolean; prefix: boolean },
): Promise<void> {
  let replicas: Started[] = [];
  if (parts.bursty) {
    console.error("(b) routing: 4 replicas, bursty short/long mix");
    replicas = await Promise.all([1, 2, 3, 4].map(() => startReplica(tinyPath, 2)));
    for (const variant of BURSTY_VARIANTS) {
      const started = await startGateway(
        variant.strategy,
        replicas,
        "choices" in variant ? { leastLoadChoices: variant.choices } : {},
      );
      routing.push(await runBursty(started.url, variant.label, config.burst));
      await stop(started);
    }
  }
  if (parts.prefix) {
    console.error(`(b) routing: 4 replicas (${config.prefix.shape}), shared long prefixes`);
    await Promise.all(replicas.map(stop));
    const prefixModel = await ensureTinyModel({ shape: config.prefix.shape, dtype: "q8_0" });
    replicas = await Promise.all(
      [1, 2, 3, 4].map(() => startReplica(prefixModel, config.prefix.parallel, true)),
    );
    for (const variant of PREFIX_VARIANTS) {
      const strategy = variant.label;
      const started = await startGateway(
        variant.strategy,
        replicas,
        "loadFactor" in variant ? { loadFactor: variant.loadFactor } : {},
      );
      const before = sumPromptTokens(replicas);
      const result = await runSharedPrefix(started.url, strategy, config.prefix, strategy);
      // Request lines are written when a response ends; wait until all of them were counted.
      const after = await settledPromptTokens(replicas);
      const total = after.total - before.total;
      routing.push({ ...result, promptTokensReused: total > 0 ? (after.cached - before.cached) / total : 0 });
      await stop(started);
    }
  }
  await Promise.all(replicas.map(stop));
}

function sumPromptTokens(replicas: Started[]): Started["promptTokens"] {
  return replicas.reduce(
    (sum, replica) => ({
      total: sum.total + replica.promptTokens.total,
      cached: sum.cached + replica.promptTokens.cached,
    }),
    { total: 0, cached: 0 },
  );
}

async function settledPromptTokens(replicas: Started[]): Promise<Started["promptTokens"]> {
  let last = sumPromptTokens(replicas);
  for (let round = 0; round < 20; round++) {
    await new Promise((done) => setTimeout(done, 100));
    const next = sumPromptTokens(replicas);
    if (next.total === last.total) return next;
    last = next;
  }
  return last;
}

// ---------- main ----------

async function main(argv: string[]): Promise<void> {
  const smoke = argv.includes("--smoke") || process.env.BENCH_SMOKE === "1";
  const config = configFor(smoke);
  const startedAt = new Date();
  const loadBefore = loadavg();
  const tinyPath = await ensureTinyModel({ shape: "tiny", dtype: "q8_0" });

  // `--only=overhead|routing|bursty|prefix` runs one part (while working on it).
  const only = argv.find((arg) => arg.startsWith("--only="))?.slice("--only=".length);
  const overhead: OverheadResult[] = [];
  let nginxNote: string | undefined;
  const routing: StrategyResult[] = [];
  if (only === undefined || only === "overhead") {
    nginxNote = await runOverheadPart(config, tinyPath, overhead);
  }
  if (only !== "overhead") {
    await runRoutingPart(config, tinyPath, routing, {
      bursty: only === undefined || only === "routing" || only === "bursty",
      prefix: only === undefined || only === "routing" || only === "prefix",
    });
  }

  const { markdown, targets } = report(config, overhead, nginxNote, routing);
  publishResults({
    benchmark: "gateway",
    smoke,
    startedAt,
    machine: machineOf(loadBefore),
    markdown,
    busyWhy: "the replicas, the gateway, nginx and this client share them; numbers are noisy",
    json: { config, overhead, nginx: nginxNote ?? "ok", routing, targets },
  });
  const failedRequests = routing.reduce((sum, result) => sum + result.failed, 0);
  if (failedRequests > 0) process.exitCode = 1;
}

await main(process.argv.slice(2)).finally(stopAll);
