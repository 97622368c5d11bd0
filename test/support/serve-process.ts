// Starts a real `berth serve` process (node bin/berth.js, built by `npm run build`) on port 0 and
// finds its URL in the ready log line {"msg":"ready","url":...}; stops it by signal or kills its group.

import { type ChildProcess, spawn } from "node:child_process";

import { REPO_ROOT } from "./repo-root.js";

export { REPO_ROOT };

export interface ServeProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Every JSON log line printed so far (stdout), parsed. */
  readonly logLines: Array<Record<string, unknown>>;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  readonly exited: Promise<number | null>;
  /** Kills the whole process group if it is still running (test cleanup). */
  kill(): void;
  /** What it printed on stderr so far (pull progress, errors). */
  stderr(): string;
}

export async function startServe(
  args: string[],
  options: { readyTimeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, ["bin/berth.js", "serve", "--port", "0", ...args], {
    cwd: REPO_ROOT,
    // Its own process group, so cleanup can kill `berth serve` and the child it relaunches itself as.
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...(options.env ?? process.env), BERTH_LOG_LEVEL: "info" },
  });
  const logLines: Array<Record<string, unknown>> = [];
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let buffered = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`berth serve was not ready in time\n${stderr}`)),
      options.readyTimeoutMs ?? 150_000,
    );
    child.stdout?.setEncoding("utf8").on("data", (data: string) => {
      buffered += data;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        logLines.push(parsed);
        if (parsed.msg === "ready" && typeof parsed.url === "string") {
          clearTimeout(timer);
          resolve(parsed.url);
        }
      }
    });
    child.stderr?.setEncoding("utf8").on("data", (data: string) => {
      stderr += data;
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`berth serve exited with ${code} before it was ready\n${stderr}`));
    });
  });
  return {
    url,
    child,
    logLines,
    exited,
    stderr: () => stderr,
    kill() {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    },
  };
}

/** Reads one sample of a metric from /metrics (0 when absent). */
export async function metricValue(url: string, sample: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  for (const line of text.split("\n")) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return 0;
}

/** Polls until the condition holds; fails after the deadline (never a fixed sleep as synchronisation). */
export async function waitFor(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
