// The end every benchmark shares: where the repository is, the machine and its load, the note that a
// busy machine makes numbers noisy, target lines, and one run's Markdown + JSON files in bench/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";

import { REPO_ROOT } from "../test/support/repo-root.js";

export { findRepoRoot, REPO_ROOT } from "../test/support/repo-root.js";

/** Load averages (1, 5, 15 min) when the run started and when it ended. */
export interface Load {
  before: number[];
  after: number[];
}

export interface Machine {
  cpus: number;
  cpuModel: string | undefined;
  memoryGiB: number;
  load: Load;
}

/** The machine as the results record it; the load "after" is read now, at the end of the run. */
export function machineOf(loadBefore: number[]): Machine {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: totalmem() / 2 ** 30,
    load: { before: loadBefore, after: loadavg() },
  };
}

/**
 * A note for a run that started on a busy machine, else "". Only the load before the run counts: it is
 * work from elsewhere, while the load at the end includes the benchmark's own processes.
 */
export function busyNote(
  machine: Machine,
  why = "numbers are lower and noisier than on an idle machine",
): string {
  const [before = 0] = machine.load.before;
  if (before <= 1.5) return "";
  const after = machine.load.after[0] ?? 0;
  return `Note: the machine was busy (load average ${before.toFixed(1)} when the run started, ${after.toFixed(1)} at its end, on ${machine.cpus} CPUs); ${why}.`;
}

export interface Target {
  target: string;
  met: boolean;
  value?: unknown;
}

/** One Markdown list line per target: "- met: …" or "- NOT met: …", with the measured value. */
export function targetLines(
  targets: readonly Target[],
  format: (value: unknown) => string = String,
): string[] {
  return targets.map((t) => `- ${t.met ? "met" : "NOT met"}: ${t.target} (${format(t.value)})`);
}

export interface Results {
  /** The benchmark's name: the files are bench/results/<benchmark>[-smoke]-<start time>.{md,json}. */
  benchmark: string;
  smoke: boolean;
  startedAt: Date;
  /** The report as printed. */
  markdown: string;
  /** Everything else the JSON file records, after `benchmark` and `startedAt`. */
  json: Record<string, unknown>;
}

/** Writes the run's Markdown and JSON into bench/results/ and returns their common path without extension. */
export function writeResults(results: Results): string {
  const stamp = results.startedAt.toISOString().replace(/:/g, "-").replace(/\..+$/, "");
  const directory = join(REPO_ROOT, "bench", "results");
  mkdirSync(directory, { recursive: true });
  const base = join(directory, `${results.benchmark}-${results.smoke ? "smoke-" : ""}${stamp}`);
  const json = { benchmark: results.benchmark, startedAt: results.startedAt.toISOString(), ...results.json };
  writeFileSync(`${base}.md`, `${results.markdown.trimEnd()}\n`);
  writeFileSync(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
  console.error(`wrote ${base}.md and .json`);
  return base;
}

/**
 * The usual end of a run: prints the report with the busy-machine note below it (if any) and writes it,
 * and the JSON with the machine, into bench/results/.
 */
export function publishResults(
  results: Results & {
    machine: Machine;
    /** What a busy machine means for this benchmark's numbers (default: lower and noisier). */
    busyWhy?: string;
  },
): string {
  const { machine, busyWhy, ...rest } = results;
  const note = busyNote(machine, busyWhy);
  const markdown = note ? `${rest.markdown.trimEnd()}\n\n${note}` : rest.markdown.trimEnd();
  console.log(markdown);
  return writeResults({ ...rest, markdown, json: { machine, ...rest.json } });
}
