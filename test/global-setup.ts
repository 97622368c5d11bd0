// Runs once before the default suite: gives the tests a BERTH_HOME of their own (cached
// between runs, ignored by git) unless the caller chose one, so tests never touch ~/.cache/berth.
import { mkdirSync } from "node:fs";
import { join } from "node:path";

export default function setup(): void {
  if (!process.env.BERTH_HOME) {
    process.env.BERTH_HOME = join(process.cwd(), ".berth", "test-home");
  }
  mkdirSync(process.env.BERTH_HOME, { recursive: true });
}
