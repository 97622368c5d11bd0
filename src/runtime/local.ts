// The local runtime: each replica is a `berth serve` child process on a free loopback port, its
// output appended to a log file under the state directory, restarted with backoff when it dies.
//
// Processes: every replica runs in its own process group (detached: setsid), so a terminal's
// Ctrl-C reaches only `berth up`, which drains replicas in order, and a stop signals the whole
// group. Nothing is left behind: stop/close send SIGTERM then SIGKILL after a grace period; an
// exit hook SIGKILLs any group still alive if `berth up` exits abruptly; and if `berth up` is
// killed outright (SIGKILL), each replica sees the pipe from its parent close (parent-watch.ts)
// and drains itself.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, mkdirSync, openSync, writeSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCpu, servedName } from "../spec/index.js";
import type { Logger } from "../util/log.js";
import type {
  LogLine,
  LogOptions,
  ObservedReplica,
  ReplicaState,
  ReplicaTemplate,
  Runtime,
  StopOptions,
} from "./types.js";

export interface LocalRuntimeOptions {
  /** Logs go to STATE_DIR/logs/MODEL/REPLICA.log. */
  stateDir: string;
  logger?: Logger;
  /** The Node.js binary for replicas; default: this process's. */
  nodePath?: string;
  /** The `berth` entry script; default: this package's bin/berth.js. */
  berthBin?: string;
  /**
   * Extra environment for replicas, on top of what they inherit from this process: only the
   * variables `replicaEnvironment` lets through (never API keys or credentials).
   */
  env?: NodeJS.ProcessEnv;
  /** A replica not answering /readyz by then is killed and restarted. Default 180 s. */
  readyTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace for stops. Default 30 s. */
  stopGraceMs?: number;
  /** Restart delays double from initial up to max. Defaults 500 ms and 30 s. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Failures in a row after which a replica is reported crash-looping. Default 3. */
  crashLoopAfter?: number;
  /** A replica that was ready this long before dying starts its backoff afresh. Default 30 s. */
  healthyAfterMs?: number;
  /**
   * Liveness: /healthz every interval (default 1 s, timeout 1 s). `unresponsiveAfter` failures in a
   * row (default 2) take a ready replica out of rotation ("unresponsive") within a few seconds;
   * `livenessFailures` in a row (default 10) kill and restart it. A success makes it ready again.
   */
  livenessIntervalMs?: number;
  livenessTimeoutMs?: number;
  unresponsiveAfter?: number;
  livenessFailures?: number;
}

interface LocalReplica {
  id: string;
  model: string;
  generation: number;
  template: ReplicaTemplate;
  logFile: string;
  state: ReplicaState;
  url?: string;
  port?: number;
  child?: ChildProcess;
  /** Increases with every launch, so callbacks of an earlier attempt are ignored. */
  attempt: number;
  restarts: number;
  failuresInARow: number;
  createdAt: number;
  startedAt: number;
  readyAt?: number;
  lastExit?: ObservedReplica["lastExit"];
  message?: string;
  lastLogLines?: string[];
  stopRequested: boolean;
  stopWaiters: Array<() => void>;
  timers: Set<NodeJS.Timeout>;
}

const LAST_LOG_LINES = 20;
const POLL_MS = 100;

/** The `berth serve` arguments for a template: loopback, a port the OS picks, the spec's engine. */
export function serveArguments(template: ReplicaTemplate): string[] {
  const spec = template.deployment.spec;
  const model = template.resolvedModel ?? spec.model.source;
  const args = [
    "serve",
    "--model",
    model,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--name",
    servedName(template.deployment),
    "--parallel",
    String(spec.engine.parallel),
    "--ctx",
    String(spec.model.contextSize),
  ];
  // A replica gets the CPUs its spec asks for (resources.cpu), as a container would.
  const threads = spec.engine.threads ?? Math.max(1, Math.floor(parseCpu(spec.resources.cpu) ?? 1));
  args.push("--threads", String(threads));
  if (spec.engine.maxQueue !== undefined) args.push("--max-queue", String(spec.engine.maxQueue));
  return args;
}

// What a replica inherits: how to run (paths, locale, temp dirs, proxies, CA certificates, Node and
// llama.cpp settings, where the caches and logs go), never a secret. API keys stay with the gateway
// (a replica could print them in a crash log, and anyone reading /proc/PID/environ would see them).
const INHERITED = new Set([
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "LANG",
  "LANGUAGE",
  "TZ",
  "TMPDIR",
  "TMP",
  "TEMP",
  "NODE_OPTIONS",
  "NODE_EXTRA_CA_CERTS",
  "NODE_ENV",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "UV_THREADPOOL_SIZE",
  "OMP_NUM_THREADS",
  "CUDA_VISIBLE_DEVICES",
  "BERTH_HOME",
  "BERTH_DEBUG",
  "HF_HOME",
  "HF_HUB_CACHE",
  "HF_ENDPOINT",
  "HF_HUB_OFFLINE",
]);
const INHERITED_PREFIXES = ["LC_", "XDG_", "BERTH_LOG_", "NODE_LLAMA_CPP_", "GGML_", "OTEL_"];
// Only for a replica that fetches its model itself (no path resolved by `berth up`).
const MODEL_CREDENTIALS = new Set(["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"]);
const MODEL_CREDENTIAL_PREFIXES = ["AWS_"];

/** The environment a replica starts with: an allowlist of `parent`, so no API key reaches it. */
export function replicaEnvironment(
  parent: NodeJS.ProcessEnv,
  options: { modelCredentials?: boolean } = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value === undefined) continue;
    const inherited =
      INHERITED.has(name) ||
      INHERITED_PREFIXES.some((prefix) => name.startsWith(prefix)) ||
      (options.modelCredentials === true &&
        (MODEL_CREDENTIALS.has(name) || MODEL_CREDENTIAL_PREFIXES.some((prefix) => name.startsWith(prefix))));
    if (inherited) env[name] = value;
  }
  return env;
}

export class LocalRuntime implements Runtime {
  readonly kind = "local";
  readonly #options: Required<Omit<LocalRuntimeOptions, "logger" | "env">> &
    Pick<LocalRuntimeOptions, "logger" | "env">;
  readonly #replicas = new Map<string, LocalReplica>();
  /** Every log file of this run, also of replicas already gone (for `logs`). */
  readonly #logFiles = new Map<string, { model: string; path: string }>();
  readonly #listeners = new Set<(replica: ObservedReplica) => void>();
  readonly #killAllOnExit = (): void => {
    for (const replica of this.#replicas.values()) killGroup(replica.child, "SIGKILL");
  };
  #closed = false;

  constructor(options: LocalRuntimeOptions) {
    this.#options = {
      nodePath: process.execPath,
      berthBin: fileURLToPath(new URL("../../bin/berth.js", import.meta.url)),
      readyTimeoutMs: 180_000,
      stopGraceMs: 30_000,
      backoffInitialMs: 500,
      backoffMaxMs: 30_000,
      crashLoopAfter: 3,
      healthyAfterMs: 30_000,
      livenessIntervalMs: 1000,
      livenessTimeoutMs: 1000,
      unresponsiveAfter: 2,
      livenessFailures: 10,
      ...options,
    };
    process.on("exit", this.#killAllOnExit);
  }

  get logDir(): string {
    return join(this.#options.stateDir, "logs");
  }

  async startReplica(template: ReplicaTemplate): Promise<ObservedReplica> {
    if (this.#closed) throw new Error("the local runtime is closed");
    const model = template.deployment.metadata.name;
    const id = `${model}-${randomBytes(3).toString("hex")}`;
    const directory = join(this.logDir, model);
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    const now = Date.now();
    const replica: LocalReplica = {
      id,
      model,
      generation: template.generation,
      template,
      logFile: join(directory, `${id}.log`),
      state: "starting",
      attempt: 0,
      restarts: 0,
      failuresInARow: 0,
      createdAt: now,
      startedAt: now,
      stopRequested: false,
      stopWaiters: [],
      timers: new Set(),
    };
    this.#replicas.set(id, replica);
    this.#logFiles.set(id, { model, path: replica.logFile });
    this.#launch(replica);
    return snapshot(replica);
  }

  async stopReplica(id: string, options: StopOptions = {}): Promise<void> {
    const replica = this.#replicas.get(id);
    if (!replica || replica.state === "stopped") return;
    const done = new Promise<void>((resolve) => replica.stopWaiters.push(resolve));
    if (!replica.stopRequested) {
      replica.stopRequested = true;
      this.#clearTimers(replica);
      if (!replica.child) {
        this.#finishStopped(replica);
      } else {
        replica.state = "draining";
        replica.message = "stopping";
        this.#emit(replica);
        killGroup(replica.child, "SIGTERM");
        this.#after(replica, options.graceMs ?? this.#options.stopGraceMs, () => {
          this.#options.logger?.warn({ replica: id }, "replica did not stop in time: SIGKILL");
          killGroup(replica.child, "SIGKILL");
        });
      }
    }
    return done;
  }

  listReplicas(): ObservedReplica[] {
    return [...this.#replicas.values()].map(snapshot);
  }

  onChange(listener: (replica: ObservedReplica) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async *logs(model: string, options: LogOptions = {}): AsyncIterable<LogLine> {
    const tailLines = options.tailLines ?? 100;
    const positions = new Map<string, { path: string; offset: number; partial: string }>();
    const filesOfModel = async (): Promise<Array<[string, string]>> => {
      const known = [...this.#logFiles.entries()]
        .filter(([, file]) => file.model === model)
        .map(([id, file]): [string, string] => [id, file.path]);
      return known;
    };
    for (const [id, path] of await filesOfModel()) {
      const { lines, size } = await tailOf(path, tailLines);
      positions.set(id, { path, offset: size, partial: "" });
      for (const line of lines) yield { replicaId: id, line };
    }
    if (!options.follow) return;
    while (!options.signal?.aborted) {
      await delay(250, options.signal);
      for (const [id, path] of await filesOfModel()) {
        let position = positions.get(id);
        if (!position) {
          position = { path, offset: 0, partial: "" };
          positions.set(id, position);
        }
        const chunk = await readFrom(path, position.offset);
        if (chunk.length === 0) continue;
        position.offset += chunk.length;
        const text = position.partial + chunk.toString("utf8");
        const lines = text.split("\n");
        position.partial = lines.pop() ?? "";
        for (const line of lines) yield { replicaId: id, line };
      }
    }
  }

  async close(options: StopOptions = {}): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#replicas.keys()].map((id) => this.stopReplica(id, options)));
    process.off("exit", this.#killAllOnExit);
  }

  #launch(replica: LocalReplica): void {
    replica.attempt += 1;
    const attempt = replica.attempt;
    replica.state = "starting";
    replica.startedAt = Date.now();
    replica.url = undefined;
    replica.port = undefined;
    replica.readyAt = undefined;
    const args = serveArguments(replica.template);
    const logFd = openSync(replica.logFile, "a", 0o600);
    let logStart = 0;
    try {
      writeSync(
        logFd,
        `--- berth: ${replica.id} attempt ${attempt} (generation ${replica.generation}) at ${new Date().toISOString()}\n`,
      );
      logStart = fstatSync(logFd).size;
      // Children write to the file directly (O_APPEND): logs survive `berth up` and cost it nothing.
      const child = spawn(
        this.#options.nodePath,
        ["--import", watchdogUrl(), this.#options.berthBin, ...args],
        {
          detached: true,
          stdio: ["ignore", logFd, logFd, "pipe"],
          env: {
            ...replicaEnvironment(process.env, {
              modelCredentials: replica.template.resolvedModel === undefined,
            }),
            // Set at spawn so `berth serve` need not relaunch itself to get it (src/engine/process.ts).
            UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? "1",
            ...this.#options.env,
            BERTH_PARENT_FD: "3",
          },
        },
      );
      replica.child = child;
      // The pipe to the child is only held open, never read: it must not keep `berth up` alive.
      const parentEnd = child.stdio[3] as (NodeJS.ReadableStream & { unref?: () => void }) | null;
      parentEnd?.unref?.();
      parentEnd?.on("error", () => undefined);
      child.on("error", (error) => {
        replica.message = `could not start: ${error.message}`;
      });
      child.on("exit", (code, signal) => this.#onExit(replica, attempt, code, signal));
    } finally {
      closeSync(logFd);
    }
    this.#options.logger?.info(
      { replica: replica.id, pid: replica.child?.pid, generation: replica.generation, attempt },
      "replica starting",
    );
    this.#emit(replica);
    void this.#waitForReady(replica, attempt, logStart);
  }

  async #waitForReady(replica: LocalReplica, attempt: number, logStart: number): Promise<void> {
    const deadline = Date.now() + this.#options.readyTimeoutMs;
    let scanned = logStart;
    let partial = "";
    while (replica.attempt === attempt && replica.child && !replica.stopRequested) {
      if (Date.now() > deadline) {
        replica.message = `not ready after ${this.#options.readyTimeoutMs} ms: killed`;
        this.#options.logger?.warn({ replica: replica.id }, replica.message);
        killGroup(replica.child, "SIGKILL");
        return;
      }
      if (!replica.url) {
        // The server announces its address as a JSON log line with a `url` field.
        const chunk = await readFrom(replica.logFile, scanned);
        scanned += chunk.length;
        const lines = (partial + chunk.toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        const url = lines.map(urlOfLogLine).find((found) => found !== undefined);
        if (url && replica.attempt === attempt) {
          replica.url = url;
          replica.port = Number(new URL(url).port);
          this.#emit(replica);
        }
      }
      if (replica.url && (await probe(`${replica.url}/readyz`, 2000))) {
        if (replica.attempt !== attempt || replica.stopRequested) return;
        replica.state = "ready";
        replica.readyAt = Date.now();
        replica.message = undefined;
        this.#options.logger?.info(
          { replica: replica.id, url: replica.url, startMs: replica.readyAt - replica.startedAt },
          "replica ready",
        );
        this.#emit(replica);
        this.#watchLiveness(replica, attempt);
        return;
      }
      await delay(POLL_MS);
    }
  }

  #watchLiveness(replica: LocalReplica, attempt: number): void {
    let failures = 0;
    const watched = () =>
      replica.attempt === attempt && (replica.state === "ready" || replica.state === "unresponsive");
    const check = async (): Promise<void> => {
      if (!watched() || !replica.url) return;
      if (await probe(`${replica.url}/healthz`, this.#options.livenessTimeoutMs)) {
        failures = 0;
        if (watched() && replica.state === "unresponsive") {
          replica.state = "ready";
          replica.message = undefined;
          this.#options.logger?.info({ replica: replica.id }, "replica answers again: back in rotation");
          this.#emit(replica);
        }
      } else if (watched()) {
        failures += 1;
        if (failures >= this.#options.unresponsiveAfter && replica.state === "ready") {
          replica.state = "unresponsive";
          replica.message = `/healthz did not answer within ${this.#options.livenessTimeoutMs} ms ${failures} times in a row`;
          this.#options.logger?.warn({ replica: replica.id }, `${replica.message}: out of rotation`);
          this.#emit(replica);
        }
        if (failures >= this.#options.livenessFailures) {
          replica.message = `liveness: /healthz failed ${failures} times in a row: killed`;
          this.#options.logger?.warn({ replica: replica.id }, replica.message);
          killGroup(replica.child, "SIGKILL");
          return;
        }
      }
      this.#after(replica, this.#options.livenessIntervalMs, () => void check());
    };
    this.#after(replica, this.#options.livenessIntervalMs, () => void check());
  }

  #onExit(replica: LocalReplica, attempt: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (replica.attempt !== attempt) return;
    const now = Date.now();
    const wasReadyFor = replica.readyAt === undefined ? 0 : now - replica.readyAt;
    replica.child = undefined;
    replica.lastExit = { at: now, code, signal };
    this.#clearTimers(replica);
    if (replica.stopRequested) {
      this.#options.logger?.info({ replica: replica.id, code, signal }, "replica stopped");
      this.#finishStopped(replica);
      return;
    }
    replica.failuresInARow = wasReadyFor >= this.#options.healthyAfterMs ? 1 : replica.failuresInARow + 1;
    replica.restarts += 1;
    const backoffMs = Math.min(
      this.#options.backoffInitialMs * 2 ** (replica.failuresInARow - 1),
      this.#options.backoffMaxMs,
    );
    const crashLooping = replica.failuresInARow >= this.#options.crashLoopAfter;
    replica.state = crashLooping ? "crash-looping" : "restarting";
    replica.url = undefined;
    replica.port = undefined;
    replica.readyAt = undefined;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const reason = replica.message?.includes("killed") ? ` (${replica.message})` : "";
    replica.message = `${how}${reason}; restart ${replica.restarts} in ${backoffMs} ms`;
    this.#emit(replica);
    void tailOf(replica.logFile, LAST_LOG_LINES).then(({ lines }) => {
      if (replica.attempt !== attempt || replica.stopRequested) return;
      replica.lastLogLines = lines;
      this.#options.logger?.warn(
        {
          replica: replica.id,
          code,
          signal,
          backoffMs,
          crashLooping,
          lastLogLines: crashLooping ? lines : undefined,
        },
        crashLooping ? "replica crash-looping" : "replica died: restarting",
      );
      this.#emit(replica);
    });
    this.#after(replica, backoffMs, () => {
      if (!replica.stopRequested && !this.#closed) this.#launch(replica);
    });
  }

  #finishStopped(replica: LocalReplica): void {
    replica.state = "stopped";
    replica.url = undefined;
    replica.message = undefined;
    this.#replicas.delete(replica.id);
    this.#emit(replica);
    const waiters = replica.stopWaiters;
    replica.stopWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #after(replica: LocalReplica, ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      replica.timers.delete(timer);
      action();
    }, ms);
    replica.timers.add(timer);
  }

  #clearTimers(replica: LocalReplica): void {
    for (const timer of replica.timers) clearTimeout(timer);
    replica.timers.clear();
  }

  #emit(replica: LocalReplica): void {
    const view = snapshot(replica);
    for (const listener of this.#listeners) {
      try {
        listener(view);
      } catch (error) {
        this.#options.logger?.error({ err: error }, "runtime listener failed");
      }
    }
  }
}

function snapshot(replica: LocalReplica): ObservedReplica {
  return {
    id: replica.id,
    model: replica.model,
    generation: replica.generation,
    state: replica.state,
    url: replica.url,
    port: replica.port,
    pid: replica.child?.pid,
    restarts: replica.restarts,
    createdAt: replica.createdAt,
    startedAt: replica.startedAt,
    readyAt: replica.readyAt,
    lastExit: replica.lastExit,
    message: replica.message,
    lastLogLines: replica.lastLogLines,
  };
}

/** The watchdog is always the compiled module: a replica's Node cannot import TypeScript. */
function watchdogUrl(): string {
  return new URL("../../dist/runtime/parent-watch.js", import.meta.url).href;
}

function killGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): void {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

function urlOfLogLine(line: string): string | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const record = JSON.parse(line) as { url?: unknown };
    // `url`, or `url.full` when the replica writes Elastic Common Schema (--log-format ecs).
    const url =
      typeof record.url === "object" && record.url !== null
        ? (record.url as { full?: unknown }).full
        : record.url;
    return typeof url === "string" && /^https?:\/\//.test(url) ? url : undefined;
  } catch {
    return undefined;
  }
}

async function probe(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function readFrom(path: string, offset: number): Promise<Buffer> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, "r");
    const size = (await handle.stat()).size;
    if (size <= offset) return Buffer.alloc(0);
    const buffer = Buffer.alloc(Math.min(size - offset, 4 * 1024 * 1024));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
    return buffer.subarray(0, bytesRead);
  } catch {
    return Buffer.alloc(0);
  } finally {
    await handle?.close();
  }
}

/** The last `count` lines of a file, and its size. */
async function tailOf(path: string, count: number): Promise<{ lines: string[]; size: number }> {
  const size = await sizeOf(path);
  const window = Math.min(size, 256 * 1024);
  const text = (await readFrom(path, size - window)).toString("utf8");
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (window < size) lines.shift(); // probably cut in the middle
  return { lines: count > 0 ? lines.slice(-count) : [], size };
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
