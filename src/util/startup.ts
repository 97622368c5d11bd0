// Where a process's cold start goes: phase marks in monotonic ms since the process started and in
// CPU ms, logged once at ready. CPU time is the number to compare on a shared machine (wall time
// there mostly measures the neighbours); a relaunched child carries its parent's phases on.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

/** One phase: when it ended (ms since the process, or its relauncher, started) and the CPU used in it. */
export interface StartupPhase {
  phase: string;
  /** End of the phase, ms since process start (the first process when relaunched). */
  atMs: number;
  /** Wall ms the phase took. */
  ms: number;
  /** CPU ms (user + system, this process and its waited-for children) the phase took. */
  cpuMs: number;
}

export interface StartupReport {
  phases: StartupPhase[];
  /** Wall ms from process start (the first process when relaunched) to the last mark. */
  totalMs: number;
  /** CPU ms over all phases. */
  cpuMs: number;
  relaunched: boolean;
}

/** The environment variable a relaunching parent passes its phases in (JSON of StartupCarry). */
export const STARTUP_CARRY_ENV = "BERTH_STARTUP_CARRY";

interface StartupCarry {
  /** When the first process was exec'd, epoch ms. */
  origin: number;
  phases: StartupPhase[];
}

const CLOCK_TICK_MS = 10; // USER_HZ is 100 on Linux

/**
 * CPU ms of this process so far, including children it has waited for (node-llama-cpp forks a
 * process to test its binary), from /proc/self/stat; process.cpuUsage() where /proc is missing.
 */
export function processCpuMs(): number {
  const own = process.cpuUsage();
  const ownMs = (own.user + own.system) / 1000;
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // cutime and cstime are fields 16-17 of stat(5), 14-15 after the command name (10 ms ticks).
    const childrenMs = (Number(fields[13]) + Number(fields[14])) * CLOCK_TICK_MS;
    return Number.isFinite(childrenMs) ? ownMs + childrenMs : ownMs;
  } catch {
    return ownMs; // not Linux
  }
}

/**
 * Wall ms from the exec of this process to performance.timeOrigin (Node's own start before any
 * JavaScript runs), from /proc (10 ms resolution); undefined off Linux.
 */
function nodeBootMs(): { ms: number } | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const startedTicks = Number(fields[19]); // starttime, field 22: clock ticks after boot
    const uptimeMs = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;
    const execToNow = uptimeMs - startedTicks * CLOCK_TICK_MS;
    const ms = execToNow - performance.now();
    return Number.isFinite(ms) ? { ms: Math.max(0, ms) } : undefined;
  } catch {
    return undefined;
  }
}

export class StartupClock {
  readonly #phases: StartupPhase[] = [];
  readonly #offsetMs: number;
  readonly relaunched: boolean;
  #lastAt: number;
  #lastCpu = 0;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    const carried = parseCarry(env[STARTUP_CARRY_ENV]);
    this.relaunched = carried !== undefined;
    // Marks are ms since the first process started: a relaunched child adds its parent's head start.
    const bootMs = nodeBootMs()?.ms ?? 0;
    const origin = carried?.origin ?? performance.timeOrigin - bootMs;
    this.#offsetMs = performance.timeOrigin - origin;
    if (carried) this.#phases.push(...carried.phases);
    this.#lastAt = this.#offsetMs - bootMs;
    if (carried) {
      const previous = carried.phases.at(-1)?.atMs ?? 0;
      this.#phases.push({
        phase: "relaunch",
        atMs: round(this.#lastAt),
        ms: round(this.#lastAt - previous),
        cpuMs: 0,
      });
    }
    // Node's own start, exec to the first line of JavaScript; its CPU is counted in the next phase.
    this.mark("node-boot", 0, 0);
  }

  /** Ends the phase `phase` now (or `atMs` after performance.timeOrigin, with `cpuMs` when given). */
  mark(phase: string, atMs?: number, cpuMs?: number): void {
    const at = this.#offsetMs + (atMs ?? performance.now());
    const cpu = cpuMs ?? processCpuMs();
    this.#phases.push({
      phase,
      atMs: round(at),
      ms: round(at - this.#lastAt),
      cpuMs: round(cpu - this.#lastCpu),
    });
    this.#lastAt = at;
    this.#lastCpu = cpu;
  }

  report(): StartupReport {
    const phases = [...this.#phases];
    return {
      phases,
      totalMs: phases.at(-1)?.atMs ?? 0,
      cpuMs: round(phases.reduce((sum, phase) => sum + phase.cpuMs, 0)),
      relaunched: this.relaunched,
    };
  }

  /** The environment entry that lets a relaunched child continue this clock. */
  carry(): Record<string, string> {
    const origin = performance.timeOrigin - this.#offsetMs;
    return { [STARTUP_CARRY_ENV]: JSON.stringify({ origin, phases: this.#phases } satisfies StartupCarry) };
  }
}

function parseCarry(text: string | undefined): StartupCarry | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as Partial<StartupCarry>;
    if (typeof value.origin !== "number" || !Array.isArray(value.phases)) return undefined;
    return { origin: value.origin, phases: value.phases };
  } catch {
    return undefined;
  }
}

const round = (value: number) => Math.round(value * 10) / 10;
