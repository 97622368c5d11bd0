// Runs a command to its end and collects its exit code, output and wall time: the one spawn-and-collect
// helper of the tests and benchmarks (the CLI runs, kubectl, curl, Python), so each needs no copy of it.
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";

export interface ProcessRun {
  /** The exit code; null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall seconds from spawn to exit. */
  seconds: number;
  /** True when the process outlived `timeoutMs` and was SIGKILLed. */
  timedOut: boolean;
}

export interface RunOptions {
  cwd?: string;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed; without it stdin is /dev/null, so nothing waits on it. */
  input?: string;
  /** SIGKILL the process after this long and resolve with `timedOut` (default: no limit). */
  timeoutMs?: number;
}

/** Resolves when the process has exited and its output is closed; rejects only when it cannot start. */
export function runProcess(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, [...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000, timedOut });
    });
    child.stdin?.end(options.input);
  });
}
