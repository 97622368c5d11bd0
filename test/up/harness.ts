// Runs a real `berth up` (node bin/berth.js) in a BERTH_HOME of its own, with the tiny model cache
// shared with the rest of the suite, and drives it: day-two commands, status polling, a load
// generator on the official openai client (no client retries: every failure counts), cleanup.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { type UpStatus, upStatusSchema } from "../../src/control/admin-protocol.js";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { modelCacheDir } from "../../src/util/home.js";

const BERTH = join(process.cwd(), "bin", "berth.js");
const OUTPUT_KEEP = 512 * 1024;

export interface SpecOptions {
  name?: string;
  replicas: string;
  autoscaling?: string;
  parallel?: number;
  contextSize?: number;
  /** More spec fields, indented two spaces (under spec:). */
  extra?: string;
}

/** A test spec: the tiny Q8_0 model, one thread per replica, small slot counts. */
export function specText(options: SpecOptions): string {
  return `---
apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: ${options.name ?? "tiny"}
spec:
  model:
    source: tiny://tiny?dtype=q8_0
    contextSize: ${options.contextSize ?? 256}
  engine:
    parallel: ${options.parallel ?? 2}
    threads: 1
  replicas: ${options.replicas}
  autoscaling: ${options.autoscaling ?? "{ enabled: false }"}
  resources: { cpu: "1", memory: 1Gi }
${options.extra ?? ""}`;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface BerthUp {
  url: string;
  home: string;
  specPath: string;
  child: ChildProcess;
  /** Every replica pid any status call has seen. */
  seenPids: Set<number>;
  stdout(): string;
  stderr(): string;
  berth(args: string[]): Promise<CommandResult>;
  status(): Promise<UpStatus>;
  waitForStatus(
    what: string,
    predicate: (status: UpStatus) => boolean,
    timeoutMs?: number,
  ): Promise<UpStatus>;
  /** Sends a signal and waits for the process to exit; resolves its exit code (null: by signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** Kills what is left (after a failed test) and removes the home. */
  cleanup(): Promise<void>;
}

/** Prepares a home whose model cache is the suite's, so the tiny model is generated once. */
export async function prepareHome(): Promise<string> {
  await ensureTinyModel({ shape: "tiny", dtype: "q8_0" });
  // mkdtemp in the system temp dir keeps the admin socket path short (Unix sockets: ~100 bytes).
  const home = mkdtempSync(join(tmpdir(), "berth-up-"));
  symlinkSync(modelCacheDir(), join(home, "models"));
  return home;
}

export async function startBerthUp(
  spec: string,
  extraArgs: string[] = [],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<BerthUp> {
  const home = await prepareHome();
  const specPath = join(home, "berth.yaml");
  writeFileSync(specPath, spec);
  const env = { ...process.env, ...extraEnv, BERTH_HOME: home };
  const child = spawn(process.execPath, [BERTH, "up", "-f", specPath, "--port", "0", ...extraArgs], {
    cwd: process.cwd(),
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout = (stdout + chunk).slice(-OUTPUT_KEEP);
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-OUTPUT_KEEP);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const seenPids = new Set<number>();

  const url = await waitFor(
    "berth up to print its gateway URL",
    async () => {
      if (child.exitCode !== null)
        throw new Error(`berth up exited ${child.exitCode}:\n${stderr.slice(-4000)}`);
      return /gateway on (http:\/\/\S+)/.exec(stdout)?.[1];
    },
    60_000,
  );

  const berth = (args: string[]): Promise<CommandResult> =>
    new Promise((resolve) => {
      execFile(process.execPath, [BERTH, ...args], { env, cwd: process.cwd() }, (error, out, err) => {
        const code = error ? ((error as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === "number" ? code : 1, stdout: out, stderr: err });
      });
    });

  const status = async (): Promise<UpStatus> => {
    const result = await berth(["status", "--json"]);
    if (result.code !== 0) throw new Error(`berth status failed (${result.code}): ${result.stderr}`);
    const parsed = upStatusSchema.parse(JSON.parse(result.stdout));
    for (const model of parsed.models)
      for (const replica of model.replicas) if (replica.pid) seenPids.add(replica.pid);
    return parsed;
  };

  const up: BerthUp = {
    url,
    home,
    specPath,
    child,
    seenPids,
    stdout: () => stdout,
    stderr: () => stderr,
    berth,
    status,
    waitForStatus: (what, predicate, timeoutMs = 90_000) =>
      waitFor(
        what,
        async () => {
          const current = await status();
          return predicate(current) ? current : undefined;
        },
        timeoutMs,
        250,
      ),
    stop: async (signal = "SIGTERM", timeoutMs = 90_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timeout = new Promise<"timeout">((resolve) =>
        setTimeout(() => resolve("timeout"), timeoutMs).unref(),
      );
      const result = await Promise.race([exited, timeout]);
      if (result === "timeout")
        throw new Error(`berth up did not exit within ${timeoutMs} ms after ${signal}`);
      return result;
    },
    cleanup: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }
      for (const pid of seenPids) if (alive(pid)) killQuietly(pid);
      rmSync(home, { recursive: true, force: true });
    },
  };
  return up;
}

/** Polls `probe` until it yields a value; fails with `what` after the deadline. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof Error && error.message.startsWith("berth up exited")) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
}

/**
 * `total` non-streaming completions through the gateway, `concurrency` at a time, and then more
 * while `until` says false (at most `maxTotal`). The client does not retry (maxRetries 0): a
 * request the gateway could not serve counts as failed.
 */
export async function runLoad(options: {
  url: string;
  model: string;
  total: number;
  concurrency: number;
  maxTokens?: number;
  until?: () => boolean;
  maxTotal?: number;
  onCompleted?: (completed: number) => void;
}): Promise<LoadResult> {
  const client = new OpenAI({
    baseURL: `${options.url}/v1`,
    apiKey: "unused-on-loopback",
    maxRetries: 0,
    timeout: 60_000,
  });
  const result: LoadResult = { ok: 0, failed: 0, errors: [] };
  let next = 0;
  const more = (): boolean =>
    next < options.total ||
    (options.until !== undefined && !options.until() && next < (options.maxTotal ?? options.total));
  const worker = async (): Promise<void> => {
    while (more()) {
      const index = next++;
      try {
        const completion = await client.completions.create({
          model: options.model,
          prompt: `Request ${index}: the quick brown fox`,
          max_tokens: options.maxTokens ?? 8,
        });
        if (completion.choices.length !== 1) throw new Error("no choice in the answer");
        result.ok += 1;
      } catch (error) {
        result.failed += 1;
        if (result.errors.length < 10)
          result.errors.push(error instanceof Error ? error.message : String(error));
      }
      options.onCompleted?.(result.ok + result.failed);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return result;
}
