// Table tests for the pure autoscaler: each case is observations + replicas + spec + previous
// state at a given time, and the decision it must produce.
import { describe, expect, it } from "vitest";
import { modelDeploymentSpecSchema } from "../spec/index.js";
import {
  type AutoscalerInput,
  type AutoscalerReason,
  type AutoscalerSpec,
  type AutoscalerState,
  decideReplicas,
  type LoadObservation,
} from "./autoscaler.js";

function specWith(
  replicas: Record<string, number>,
  autoscaling: Record<string, unknown> = {},
): AutoscalerSpec {
  return modelDeploymentSpecSchema.parse({
    model: { source: "tiny://tiny" },
    replicas,
    autoscaling: {
      targetInFlight: 6,
      stableWindow: "60s",
      panicWindow: "6s",
      panicThreshold: 2,
      scaleDownDelay: "30s",
      idleToZero: "10m",
      ...autoscaling,
    },
  });
}

/** One sample a second over (from, to], all with the same in-flight count. */
function steady(from: number, to: number, inFlight: number): LoadObservation[] {
  const samples: LoadObservation[] = [];
  for (let at = from + 1000; at <= to; at += 1000) samples.push({ at, inFlight });
  return samples;
}

function state(overrides: Partial<AutoscalerState> & { desired: number }): AutoscalerState {
  return {
    panicSince: undefined,
    panicLastOverAt: undefined,
    recommendations: [{ at: 0, desired: overrides.desired }],
    lastActiveAt: 0,
    ...overrides,
  };
}

const T = 1_000_000; // "now" in the single-decision cases
const base = specWith({ min: 1, max: 4 });

interface Case {
  name: string;
  input: Omit<AutoscalerInput, "now"> & { now?: number };
  desired: number;
  reason: AutoscalerReason;
}

const cases: Case[] = [
  {
    name: "first decision keeps replicas.initial without load",
    input: {
      spec: specWith({ min: 1, max: 4, initial: 2 }),
      observations: [],
      readyReplicas: 0,
      previous: undefined,
    },
    desired: 2,
    reason: "initial",
  },
  {
    name: "first decision without initial starts min",
    input: { spec: specWith({ min: 3, max: 4 }), observations: [], readyReplicas: 0, previous: undefined },
    desired: 3,
    reason: "initial",
  },
  {
    name: "stable demand of 18 at target 6 wants 3",
    input: {
      spec: base,
      observations: steady(T - 60_000, T, 18),
      readyReplicas: 2,
      previous: state({ desired: 2, lastActiveAt: T - 1000 }),
    },
    desired: 3,
    reason: "scale-up",
  },
  {
    name: "demand exactly at capacity stays",
    input: {
      spec: base,
      observations: steady(T - 60_000, T, 12),
      readyReplicas: 2,
      previous: state({ desired: 2, lastActiveAt: T - 1000 }),
    },
    desired: 2,
    reason: "steady",
  },
  {
    name: "a burst in the panic window at ≥ 2x capacity panics on the short window",
    input: {
      spec: base,
      // 54 s idle then 6 s at 24 in flight: stable average 2.4 (1 replica), panic average 24 (4 replicas).
      observations: [...steady(T - 60_000, T - 6000, 0), ...steady(T - 6000, T, 24)],
      readyReplicas: 1,
      previous: state({ desired: 1, lastActiveAt: T - 1000 }),
    },
    desired: 4,
    reason: "panic",
  },
  {
    name: "panic demand is clamped to max",
    input: {
      spec: base,
      observations: steady(T - 6000, T, 600),
      readyReplicas: 1,
      previous: state({ desired: 1, lastActiveAt: T - 1000 }),
    },
    desired: 4,
    reason: "panic",
  },
  {
    name: "just under the panic threshold scales on the stable window",
    input: {
      spec: base,
      // panic average 11 < 2 x 1 x 6; the stable average is 11 as well: 2 replicas.
      observations: steady(T - 60_000, T, 11),
      readyReplicas: 1,
      previous: state({ desired: 1, lastActiveAt: T - 1000 }),
    },
    desired: 2,
    reason: "scale-up",
  },
  {
    name: "no scale-down while panicking even when demand fell",
    input: {
      spec: base,
      observations: steady(T - 60_000, T, 1),
      readyReplicas: 4,
      previous: state({
        desired: 4,
        panicSince: T - 20_000,
        panicLastOverAt: T - 10_000,
        lastActiveAt: T - 1000,
      }),
    },
    desired: 4,
    reason: "steady",
  },
  {
    name: "panic ends a stable window after the last time over the threshold",
    input: {
      spec: base,
      observations: steady(T - 60_000, T, 1),
      readyReplicas: 4,
      previous: state({
        desired: 4,
        panicSince: T - 90_000,
        panicLastOverAt: T - 60_000,
        recommendations: [{ at: T - 60_000, desired: 4 }],
        lastActiveAt: T - 1000,
      }),
    },
    desired: 1,
    reason: "scale-down",
  },
  {
    name: "a lower recommendation waits for scaleDownDelay",
    input: {
      spec: base,
      observations: steady(T - 60_000, T, 6),
      readyReplicas: 3,
      previous: state({
        desired: 3,
        recommendations: [{ at: T - 10_000, desired: 3 }],
        lastActiveAt: T - 1000,
      }),
    },
    desired: 3,
    reason: "scale-down-delayed",
  },
  {
    name: "after scaleDownDelay of lower recommendations it scales down",
    input: {
      spec: base,
      observations: steady(T - 60_000, T, 6),
      readyReplicas: 3,
      previous: state({
        desired: 3,
        recommendations: [
          { at: T - 30_000, desired: 3 },
          { at: T - 20_000, desired: 1 },
        ],
        lastActiveAt: T - 1000,
      }),
    },
    desired: 1,
    reason: "scale-down",
  },
  {
    name: "the highest recommendation within the delay wins",
    input: {
      spec: base,
      observations: steady(T - 60_000, T, 6),
      readyReplicas: 4,
      previous: state({
        desired: 4,
        recommendations: [
          { at: T - 25_000, desired: 2 },
          { at: T - 5000, desired: 1 },
        ],
        lastActiveAt: T - 1000,
      }),
    },
    desired: 2,
    reason: "scale-down",
  },
  {
    name: "min clamps an idle model",
    input: {
      spec: specWith({ min: 2, max: 4 }),
      observations: steady(T - 60_000, T, 0),
      readyReplicas: 2,
      previous: state({ desired: 2 }),
    },
    desired: 2,
    reason: "steady",
  },
  {
    name: "min 0 keeps one replica while it has been active within idleToZero",
    input: {
      spec: specWith({ min: 0, max: 2 }),
      observations: steady(T - 60_000, T, 0),
      readyReplicas: 1,
      previous: state({ desired: 1, lastActiveAt: T - 599_000 }),
    },
    desired: 1,
    reason: "steady",
  },
  {
    name: "min 0 scales to zero after idleToZero without requests",
    input: {
      spec: specWith({ min: 0, max: 2 }),
      observations: steady(T - 60_000, T, 0),
      readyReplicas: 1,
      previous: state({ desired: 1, lastActiveAt: T - 600_000 }),
    },
    desired: 0,
    reason: "scale-to-zero",
  },
  {
    name: "a request seen between samples resets the idle clock",
    input: {
      spec: specWith({ min: 0, max: 2 }),
      observations: steady(T - 60_000, T, 0),
      readyReplicas: 1,
      previous: state({ desired: 1, lastActiveAt: T - 600_000 }),
      lastRequestAt: T - 500,
    },
    desired: 1,
    reason: "steady",
  },
  {
    name: "min 1 never scales to zero",
    input: {
      spec: base,
      observations: [],
      readyReplicas: 1,
      previous: state({ desired: 1, lastActiveAt: T - 10_000_000 }),
    },
    desired: 1,
    reason: "steady",
  },
  {
    name: "a waiting request at zero starts one replica",
    input: {
      spec: specWith({ min: 0, max: 4 }),
      observations: [],
      readyReplicas: 0,
      previous: state({ desired: 0 }),
      waiting: true,
    },
    desired: 1,
    reason: "scale-from-zero",
  },
  {
    name: "in-flight demand at zero starts exactly one, however large",
    input: {
      spec: specWith({ min: 0, max: 4 }),
      observations: [{ at: T, inFlight: 50 }],
      readyReplicas: 0,
      previous: state({ desired: 0 }),
    },
    desired: 1,
    reason: "scale-from-zero",
  },
  {
    name: "zero stays zero without demand",
    input: {
      spec: specWith({ min: 0, max: 4 }),
      observations: steady(T - 60_000, T, 0),
      readyReplicas: 0,
      previous: state({ desired: 0 }),
    },
    desired: 0,
    reason: "steady",
  },
  {
    name: "a manual floor replaces min",
    input: {
      spec: base,
      observations: [],
      readyReplicas: 1,
      previous: state({ desired: 1, lastActiveAt: T - 1000 }),
      manualFloor: 3,
    },
    desired: 3,
    reason: "scale-up",
  },
  {
    name: "a manual floor above max lifts the ceiling to it",
    input: {
      spec: base,
      observations: steady(T - 60_000, T, 600),
      readyReplicas: 4,
      previous: state({ desired: 4, lastActiveAt: T - 1000 }),
      manualFloor: 6,
    },
    desired: 6,
    reason: "panic",
  },
  {
    name: "a manual floor of 0 at zero replicas with no demand stays at zero",
    input: {
      spec: base,
      observations: [],
      readyReplicas: 0,
      previous: state({ desired: 0 }),
      manualFloor: 0,
    },
    desired: 0,
    reason: "steady",
  },
  {
    name: "a lowered max applies at once, whatever the delay remembers",
    input: {
      spec: specWith({ min: 1, max: 2 }),
      observations: steady(T - 60_000, T, 30),
      readyReplicas: 4,
      previous: state({
        desired: 4,
        recommendations: [{ at: T - 1000, desired: 4 }],
        lastActiveAt: T - 1000,
      }),
    },
    desired: 2,
    reason: "scale-down",
  },
  {
    name: "observations older than the stable window are ignored",
    input: {
      spec: base,
      observations: steady(T - 300_000, T - 61_000, 100),
      readyReplicas: 1,
      previous: state({ desired: 1, lastActiveAt: T - 1000 }),
    },
    desired: 1,
    reason: "steady",
  },
  {
    name: "autoscaling disabled runs the initial count whatever the load",
    input: {
      spec: specWith({ min: 1, max: 4, initial: 2 }, { enabled: false }),
      observations: steady(T - 60_000, T, 600),
      readyReplicas: 2,
      previous: state({ desired: 2 }),
    },
    desired: 2,
    reason: "fixed",
  },
  {
    name: "autoscaling disabled runs the manual count",
    input: {
      spec: specWith({ min: 1, max: 4 }, { enabled: false }),
      observations: [],
      readyReplicas: 1,
      previous: state({ desired: 1 }),
      manualFloor: 3,
    },
    desired: 3,
    reason: "fixed",
  },
];

describe("decideReplicas", () => {
  it.each(cases)("$name", ({ input, desired, reason }) => {
    const decision = decideReplicas({ now: T, ...input });
    expect({ desired: decision.desired, reason: decision.event.reason }).toEqual({ desired, reason });
    expect(decision.state.desired).toBe(desired);
  });

  it("records the inputs of a decision", () => {
    const decision = decideReplicas({
      now: T,
      spec: base,
      observations: steady(T - 60_000, T, 18),
      readyReplicas: 2,
      previous: state({ desired: 2, lastActiveAt: T - 1000 }),
    });
    expect(decision.event.inputs).toMatchObject({
      current: 2,
      readyReplicas: 2,
      stableInFlight: 18,
      panicInFlight: 18,
      stableDesired: 3,
      panicDesired: 3,
      targetInFlight: 6,
      panicking: false,
      floor: 1,
      ceiling: 4,
    });
  });

  it("keeps only the recommendations within scaleDownDelay in its state", () => {
    const decision = decideReplicas({
      now: T,
      spec: base,
      observations: [],
      readyReplicas: 1,
      previous: state({
        desired: 1,
        recommendations: [
          { at: T - 31_000, desired: 4 },
          { at: T - 29_000, desired: 1 },
        ],
      }),
    });
    expect(decision.state.recommendations).toEqual([
      { at: T - 29_000, desired: 1 },
      { at: T, desired: 1 },
    ]);
  });
});

// A whole episode, one decision a second: load arrives, holds, stops; the autoscaler must go up
// to max, hold through the delay, come back down to min, and then to zero when min is 0.
describe("decideReplicas over time", () => {
  function simulate(spec: AutoscalerSpec, loadAt: (second: number) => number, seconds: number): number[] {
    const observations: LoadObservation[] = [];
    let previous: AutoscalerState | undefined;
    let lastRequestAt = 0;
    const desired: number[] = [];
    for (let second = 1; second <= seconds; second++) {
      const now = second * 1000;
      const inFlight = loadAt(second);
      if (inFlight > 0) lastRequestAt = now;
      observations.push({ at: now, inFlight });
      const decision = decideReplicas({
        now,
        spec,
        observations,
        // Replicas become ready two seconds after they are asked for.
        readyReplicas: desired[second - 3] ?? previous?.desired ?? 0,
        previous,
        lastRequestAt,
      });
      previous = decision.state;
      desired.push(decision.desired);
    }
    return desired;
  }

  it("scales up under sustained load, holds through the delay, and scales back down", () => {
    const spec = specWith(
      { min: 1, max: 3 },
      { targetInFlight: 2, stableWindow: "10s", panicWindow: "2s", scaleDownDelay: "5s" },
    );
    const series = simulate(spec, (second) => (second > 5 && second <= 35 ? 8 : 0), 70);
    expect(series[0]).toBe(1);
    expect(Math.max(...series)).toBe(3);
    const reachedMax = series.indexOf(3);
    expect(reachedMax).toBeGreaterThan(4);
    expect(reachedMax).toBeLessThan(15);
    // Still at max right after the load stops: the scale-down delay (and panic) hold it.
    expect(series[36]).toBe(3);
    expect(series.at(-1)).toBe(1);
  });

  it("with min 0 goes to zero after idleToZero and back to one on demand", () => {
    const spec = specWith(
      { min: 0, max: 2 },
      { targetInFlight: 2, stableWindow: "10s", panicWindow: "2s", scaleDownDelay: "5s", idleToZero: "20s" },
    );
    const series = simulate(spec, (second) => (second === 5 || second === 60 ? 1 : 0), 62);
    expect(series[10]).toBe(1);
    // Last request at second 5: zero from second 25 on, until the request at second 60.
    expect(series[23]).toBe(1);
    expect(series[25]).toBe(0);
    expect(series[58]).toBe(0);
    expect(series[59]).toBe(1);
  });
});
