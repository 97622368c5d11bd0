// How a process that runs the engine must be started: libuv's thread pool of size 1, set in the
// environment BEFORE Node starts, plus a helper that relaunches the current command that way.
import { spawn } from "node:child_process";

/**
 * Why 1: node-llama-cpp runs each decode on whichever libuv pool thread is free, and llama.cpp's CPU
 * backend gives every calling thread its own OpenMP team. With the default pool of 4, up to 4 teams
 * exist and the idle ones spin against the same cores (2 here): measured single-stream f16 went
 * 57 → 111 tok/s with UV_THREADPOOL_SIZE=1 alone. The pool is then shared with fs/dns/zlib work of
 * the process, which a model server barely does.
 *
 * Why before start: libuv creates the pool on first use and reads the variable only then. Node's ESM
 * loader already uses the pool to read an ES module entry, so setting process.env in an ES module is
 * too late (measured: the pool keeps 4 threads). A CommonJS entry is read without the pool, so
 * bin/berth.js (CommonJS through bin/package.json) sets it for `serve` before it imports the CLI
 * (measured: the same thread count as a process spawned with the variable). The local runtime, the
 * container image (ENV) and benchmarks also spawn with it; only a `serve` started some other way
 * (node dist/cli/main.js) relaunches itself (relaunchWithEngineEnvironment), which costs a second
 * Node start and model check on every cold start.
 */
export const ENGINE_UV_THREADPOOL_SIZE = "1";

/** The environment to spawn an engine process with (a copy of `base` with the thread pool set). */
export function engineProcessEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, UV_THREADPOOL_SIZE: base.UV_THREADPOOL_SIZE ?? ENGINE_UV_THREADPOOL_SIZE };
}

/** True when this process was started with a thread pool size chosen on purpose. */
export function hasEngineProcessEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.UV_THREADPOOL_SIZE !== undefined && env.UV_THREADPOOL_SIZE !== "";
}

/**
 * Runs this same command again as a child with engineProcessEnv(), forwarding SIGINT/SIGTERM/SIGHUP
 * and stdio, and resolves with the exit code the parent should exit with; `extraEnv` is added to
 * the child's environment. Use only when
 * hasEngineProcessEnv() is false (otherwise it would relaunch forever): the child has the variable.
 */
export function relaunchWithEngineEnvironment(extraEnv: NodeJS.ProcessEnv = {}): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env: engineProcessEnv({ ...process.env, ...extraEnv }),
    stdio: "inherit",
  });
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of signals) process.on(signal, forward);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      for (const name of signals) process.off(name, forward);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}
