// Where Berth keeps its caches and state: BERTH_HOME, else ~/.cache/berth.
// Tests set BERTH_HOME to isolate runs; nothing else in the code reads the environment for this.
import { homedir } from "node:os";
import { join } from "node:path";

export function berthHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.BERTH_HOME && env.BERTH_HOME.length > 0 ? env.BERTH_HOME : join(homedir(), ".cache", "berth");
}

export function modelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(berthHome(env), "models");
}

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(berthHome(env), "state");
}
