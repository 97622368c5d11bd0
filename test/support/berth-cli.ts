// Runs `node bin/berth.js ARGS` (needs `npm run build`) as a separate process with the environment
// given (nothing of the test's own added), and collects its exit code and output.
import { spawn } from "node:child_process";
import { REPO_ROOT } from "./serve-process.js";

export interface BerthRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runBerth(args: readonly string[], env: NodeJS.ProcessEnv): Promise<BerthRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/berth.js", ...args], { cwd: REPO_ROOT, env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
