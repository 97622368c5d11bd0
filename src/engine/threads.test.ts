import { describe, expect, it } from "vitest";
import { ThreadTuner } from "./threads.js";

/** Runs `steps` steps whose time depends on the thread count; returns the counts used, in order. */
function drive(tuner: ThreadTuner, steps: number, msFor: (threads: number) => number, key = 8): number[] {
  const used: number[] = [];
  for (let step = 0; step < steps; step++) {
    const threads = tuner.threads;
    used.push(threads);
    tuner.record(msFor(threads), key);
  }
  return used;
}

const quiet = (threads: number) => 20 / threads; // more threads, faster
const contended = (threads: number) => (threads === 1 ? 20 : 60); // a neighbour: spinning barriers

describe("ThreadTuner", () => {
  it("starts at the most threads and keeps them while they are the fastest", () => {
    const tuner = new ThreadTuner({ maxThreads: 2, holdSteps: 16, probeSteps: 4 });
    const used = drive(tuner, 400, quiet);
    expect(used[0]).toBe(2);
    expect(used.at(-1)).toBe(2);
    // Probes that change nothing back off: few steps ran at 1 thread.
    expect(used.filter((threads) => threads === 1).length).toBeLessThan(20);
  });

  it("drops to fewer threads when they are faster, and climbs back when the neighbour leaves", () => {
    const tuner = new ThreadTuner({ maxThreads: 2, holdSteps: 16, probeSteps: 4 });
    drive(tuner, 100, contended);
    expect(tuner.threads).toBe(1);
    drive(tuner, 100, quiet);
    expect(tuner.threads).toBe(2);
  });

  it("walks down several steps from a large budget", () => {
    const tuner = new ThreadTuner({ maxThreads: 8, holdSteps: 8, probeSteps: 4 });
    // Best at 3 threads.
    drive(tuner, 2000, (threads) => 10 + Math.abs(threads - 3) * 5);
    expect(tuner.threads).toBe(3);
  });

  it("keeps more threads only when they save wall time worth their CPU", () => {
    // Quiet: 2 threads 40% faster for 20% more CPU: kept.
    const quietTuner = new ThreadTuner({ maxThreads: 2, holdSteps: 16, probeSteps: 4, margin: 0.1 });
    for (let step = 0; step < 300; step++) {
      const threads = quietTuner.threads;
      quietTuner.record(threads === 2 ? 12 : 20, 1, threads === 2 ? 24 : 20);
    }
    expect(quietTuner.threads).toBe(2);
    // Every core taken: 2 spinning threads 10% faster for 3x the CPU: one thread wins.
    const busyTuner = new ThreadTuner({ maxThreads: 2, holdSteps: 16, probeSteps: 4, margin: 0.05 });
    for (let step = 0; step < 300; step++) {
      const threads = busyTuner.threads;
      busyTuner.record(threads === 2 ? 18 : 20, 1, threads === 2 ? 60 : 20);
    }
    expect(busyTuner.threads).toBe(1);
  });

  it("ends a probe of more threads after two steps when they only burn CPU", () => {
    const tuner = new ThreadTuner({ maxThreads: 2, holdSteps: 16, probeSteps: 8 });
    for (let step = 0; step < 16; step++) tuner.record(20, 1, 20); // settle at 1 (a probe down wins)
    for (let step = 0; step < 8; step++) tuner.record(10, 1, 10);
    expect(tuner.threads).toBe(1);
    const used: number[] = [];
    for (let step = 0; step < 40; step++) {
      const threads = tuner.threads;
      used.push(threads);
      tuner.record(threads === 2 ? 10 : 10, 1, threads === 2 ? 60 : 10);
    }
    // The probe up began after the 16-step hold and ended after its second step.
    expect(used.filter((threads) => threads === 2).length).toBe(2);
    expect(tuner.threads).toBe(1);
  });

  it("needs a clear win: more threads within the margin are not kept", () => {
    const tuner = new ThreadTuner({ maxThreads: 2, holdSteps: 16, probeSteps: 4, margin: 0.1 });
    drive(tuner, 300, (threads) => (threads === 1 ? 20 : 19));
    expect(tuner.threads).toBe(1);
  });

  it("compares only steps of the same shape", () => {
    const tuner = new ThreadTuner({ maxThreads: 2, holdSteps: 16, probeSteps: 4 });
    // Held at 2 threads with 16-sequence steps (slow), probed at 1 with 1-sequence steps (fast):
    // the probe has no comparable steps, so no verdict.
    for (let step = 0; step < 16; step++) tuner.record(40, 16);
    expect(tuner.threads).toBe(1);
    for (let step = 0; step < 4; step++) tuner.record(5, 1);
    expect(tuner.threads).toBe(2);
  });

  it("never leaves a single thread and rejects a budget below one", () => {
    const tuner = new ThreadTuner({ maxThreads: 1 });
    expect(drive(tuner, 200, contended).every((threads) => threads === 1)).toBe(true);
    expect(() => new ThreadTuner({ maxThreads: 0 })).toThrow(/maxThreads/);
  });
});
