// bench:serve's noisy neighbour: a bounded CPU burner (one thread, pinned to one CPU where `taskset`
// exists) that runs while a system under test serves, the same for every system. It stands for what
// a shared node, another pod or a build on the same machine does to a model server.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpus } from "node:os";

export interface Neighbour {
  /** The CPU the burner is pinned to; undefined where it could not be pinned (one thread anyway). */
  readonly cpu: number | undefined;
  stop(): Promise<void>;
}

const BURN = "for (;;) {}";

function hasTaskset(): boolean {
  return spawnSync("taskset", ["--version"], { stdio: "ignore" }).status === 0;
}

/**
 * Starts the burner on the last CPU. One busy thread can never take more than one CPU, pinned or
 * not; pinning makes it the same CPU for both sides of a comparison.
 */
export function startNeighbour(): Neighbour {
  const cpu = hasTaskset() ? cpus().length - 1 : undefined;
  const child: ChildProcess =
    cpu === undefined
      ? spawn(process.execPath, ["-e", BURN], { stdio: "ignore" })
      : spawn("taskset", ["-c", String(cpu), process.execPath, "-e", BURN], { stdio: "ignore" });
  return {
    cpu,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((done) => child.once("exit", done));
      child.kill("SIGKILL");
      await exited;
    },
  };
}
