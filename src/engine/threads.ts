// How many threads the engine decodes with, chosen at run time from how fast decode steps really are.
//
// Why at run time: node-llama-cpp's prebuilt CPU binary has no OpenMP, so ggml's threads meet at a
// barrier after every operation (~10 per layer) and wait there by spinning, never yielding the CPU.
// When another process takes one of the cores (a noisy neighbour, a build, another pod), the thread
// that shares that core is descheduled for a whole time slice while the others spin for it: measured
// here, 5x the CPU per token and a fifth of the speed. Fewer threads then are faster, and on a quiet
// machine more are. Neither the core count nor a cgroup quota says which case holds, so the tuner
// measures: it runs at its current count, now and then tries one thread more or fewer for a few
// steps, and keeps whichever is better. The cost is the probe steps at the worse count; after a probe
// that changes nothing it waits twice as long before the next (up to `maxHoldSteps`).
//
// "Better" weighs CPU as well as wall time: on a machine where every core is taken, two spinning
// threads win a larger share of the CPU from other processes and so can finish a step a little
// sooner while burning 3x the CPU (measured: 98% of samples in ggml_barrier). More threads are kept
// only when they save at least half as much wall time as they add CPU time, and at least `margin`.

export interface ThreadTunerOptions {
  /** The most threads to use (the CPU budget, or what the user asked for). */
  maxThreads: number;
  /**
   * Steps measured at the current count before a probe; also the hold after a change. Default 16:
   * under contention a spinning step can take a second, so the first probe must come early.
   */
  holdSteps?: number;
  /** The longest hold after probes that changed nothing. Default 1024 (probes then cost < 1%). */
  maxHoldSteps?: number;
  /** Steps measured at the probed count. Default 8. */
  probeSteps?: number;
  /** A probe wins when its median step is this much faster than the current one's. Default 0.08. */
  margin?: number;
}

type Phase = "hold" | "probe";

interface Step {
  wallMs: number;
  cpuMs: number;
}

/** Step times by step shape (key). */
class Samples {
  private readonly byKey = new Map<number, Step[]>();
  count = 0;

  add(key: number, step: Step): void {
    const list = this.byKey.get(key);
    if (list) list.push(step);
    else this.byKey.set(key, [step]);
    this.count++;
  }

  of(key: number): Step[] {
    return this.byKey.get(key) ?? [];
  }

  /** The shape with the most steps. */
  commonest(): number | undefined {
    let best: number | undefined;
    for (const [key, list] of this.byKey)
      if (best === undefined || list.length > this.of(best).length) best = key;
    return best;
  }
}

export class ThreadTuner {
  private readonly maxThreads: number;
  private readonly baseHold: number;
  private readonly maxHold: number;
  private readonly probeSteps: number;
  private readonly margin: number;
  /** Threads the engine runs with, outside probes. */
  private settled: number;
  private phase: Phase = "hold";
  private hold: number;
  private probeUp = false;
  private current = new Samples();
  private probe = new Samples();
  private probed = 0;

  constructor(options: ThreadTunerOptions) {
    if (!Number.isInteger(options.maxThreads) || options.maxThreads < 1)
      throw new Error(`maxThreads must be a positive integer, got ${options.maxThreads}`);
    this.maxThreads = options.maxThreads;
    this.baseHold = options.holdSteps ?? 16;
    this.maxHold = options.maxHoldSteps ?? 1024;
    this.probeSteps = options.probeSteps ?? 8;
    this.margin = options.margin ?? 0.08;
    this.settled = options.maxThreads;
    this.hold = this.baseHold;
  }

  /** Threads for the next step. */
  get threads(): number {
    return this.phase === "probe" ? this.probed : this.settled;
  }

  /** Threads outside probes: the count the tuner last found fastest. */
  get settledThreads(): number {
    return this.settled;
  }

  /**
   * Records one decode step that ran with `this.threads` threads, took `wallMs` and used `cpuMs` of
   * the process's CPU time. Only steps of the same shape are compared: `key` names it (the engine
   * passes the number of sequences that generated a token in the step); a probe is judged on its
   * commonest shape.
   */
  record(wallMs: number, key: number, cpuMs = wallMs * this.threads): void {
    if (this.maxThreads === 1 || !Number.isFinite(wallMs) || wallMs < 0 || !Number.isFinite(cpuMs)) return;
    const step = { wallMs, cpuMs: Math.max(cpuMs, 1e-6) };
    if (this.phase === "hold") {
      this.current.add(key, step);
      if (this.current.count >= this.hold) this.startProbe();
      return;
    }
    this.probe.add(key, step);
    if (this.probe.count < this.probeSteps) {
      if (this.probed > this.settled && this.clearlyWasteful(key))
        this.restart(Math.min(this.maxHold, this.hold * 2));
      return;
    }
    const shape = this.probe.commonest()!;
    const probeTimes = this.probe.of(shape);
    // The current count's most recent steps of that shape, by median (robust to a burst of load).
    const currentTimes = this.current.of(shape).slice(-this.probeSteps * 4);
    if (
      currentTimes.length < Math.min(4, this.probeSteps) ||
      probeTimes.length < Math.min(4, this.probeSteps)
    ) {
      this.restart(this.hold); // too few comparable steps: measure again, no verdict
    } else if (this.prefers(this.probed, probeTimes, this.settled, currentTimes)) {
      this.settled = this.probed;
      this.restart(this.baseHold);
    } else {
      this.restart(Math.min(this.maxHold, this.hold * 2));
    }
  }

  /**
   * After two steps of a probe with more threads: twice the CPU for no wall-time gain ends it at
   * once. Under contention one spinning step costs many times a step at the settled count, so the
   * probe's remaining steps would cost more than everything between probes.
   */
  private clearlyWasteful(key: number): boolean {
    const probeSteps = this.probe.of(key);
    const currentSteps = this.current.of(key);
    if (probeSteps.length < 2 || currentSteps.length < 2) return false;
    const probeCpu = median(probeSteps.map((s) => s.cpuMs));
    const probeWall = median(probeSteps.map((s) => s.wallMs));
    return (
      probeCpu >= 2 * median(currentSteps.map((s) => s.cpuMs)) &&
      probeWall >= median(currentSteps.map((s) => s.wallMs)) * (1 - this.margin)
    );
  }

  /** Whether `a` threads (steps `aSteps`) beat `b` threads (steps `bSteps`). */
  private prefers(a: number, aSteps: Step[], b: number, bSteps: Step[]): boolean {
    const more =
      a > b
        ? { wall: median(aSteps.map((s) => s.wallMs)), cpu: median(aSteps.map((s) => s.cpuMs)) }
        : undefined;
    const fewer =
      a > b
        ? undefined
        : { wall: median(aSteps.map((s) => s.wallMs)), cpu: median(aSteps.map((s) => s.cpuMs)) };
    const other = { wall: median(bSteps.map((s) => s.wallMs)), cpu: median(bSteps.map((s) => s.cpuMs)) };
    const high = more ?? other;
    const low = fewer ?? other;
    const wallSaved = (low.wall - high.wall) / low.wall;
    const cpuAdded = (high.cpu - low.cpu) / low.cpu;
    const moreJustified = wallSaved >= this.margin && wallSaved >= 0.5 * cpuAdded;
    return a > b ? moreJustified : !moreJustified;
  }

  private startProbe(): void {
    const up = this.settled + 1;
    const down = this.settled - 1;
    // Alternate the direction; at either end there is one way only.
    this.probeUp = !this.probeUp;
    let next = this.probeUp ? up : down;
    if (next < 1 || next > this.maxThreads) next = this.probeUp ? down : up;
    this.phase = "probe";
    this.probed = next;
    this.probe = new Samples();
  }

  private restart(hold: number): void {
    this.phase = "hold";
    this.hold = hold;
    this.current = new Samples();
    this.probe = new Samples();
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
