// Runs `node bin/berth.js ARGS` (needs `npm run build`) from the repository root as a separate process,
// with the environment given (default: the test's own), and collects its exit code and output.
import { type ProcessRun, type RunOptions, runProcess } from "./run-process.js";
import { REPO_ROOT } from "./serve-process.js";

export type BerthRun = ProcessRun;

export function runBerth(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  options: Omit<RunOptions, "env" | "cwd"> = {},
): Promise<BerthRun> {
  return runProcess(process.execPath, ["bin/berth.js", ...args], { ...options, cwd: REPO_ROOT, env });
}
