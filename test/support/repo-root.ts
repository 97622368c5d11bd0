// The repository root, found by walking up from a module: the same answer from the source tree and
// from the compiled copies under .berth/bench-build/ that the benchmarks run.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The nearest directory above `from` that holds package.json and bin/berth.js. */
export function findRepoRoot(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "bin", "berth.js"))) return dir;
  }
  throw new Error(`no repository root (package.json and bin/berth.js) above ${from}`);
}

export const REPO_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));
