// Shared settings of the property-based (fast-check) fuzz suites: a fixed run count by default so
// `npm test` stays quick, FUZZ_RUNS for longer runs, FUZZ_SEED to replay a failure. fast-check's
// failure message names the seed and the counterexample path (`{ seed: …, path: "…" }`); pass both
// back as FUZZ_SEED and FUZZ_PATH to replay exactly that case.
// Under CI (CI=true) the seed is fixed unless FUZZ_SEED is given: a merge gate must give the same
// answer for the same commit; new seeds are explored by local runs and FUZZ_RUNS=… sessions.
import type { Parameters } from "fast-check";

const CI_SEED = 20261202;

export function fuzzParameters<T>(defaultRuns: number): Parameters<T> {
  const runs = Number(process.env.FUZZ_RUNS);
  const seed = Number(process.env.FUZZ_SEED);
  const parameters: Parameters<T> = {
    numRuns: Number.isInteger(runs) && runs > 0 ? runs : defaultRuns,
    // Shrinking re-runs the property many times (with a real engine, minutes); the first
    // counterexample is reported as found unless FUZZ_SHRINK=1.
    endOnFailure: process.env.FUZZ_SHRINK !== "1",
  };
  if (Number.isInteger(seed)) parameters.seed = seed;
  else if (process.env.CI === "true") parameters.seed = CI_SEED;
  if (process.env.FUZZ_PATH) parameters.path = process.env.FUZZ_PATH;
  return parameters;
}
