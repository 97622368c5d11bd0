// The autoscaler: a pure function from load observations, current replicas, the spec and the
// previous decision's state to desired replicas, with the reason and inputs recorded as an event.
//
// Shaped after Knative's KPA: demand is the average number of in-flight requests over a stable
// window (and a short panic window); desired = ceil(demand / targetInFlight). When the panic
// window's demand reaches panicThreshold x current capacity the autoscaler panics: it scales on
// the short window and never scales down until demand has stayed below the threshold for a whole
// stable window. Scale-down waits scaleDownDelay (desired is the highest recommendation seen in
// that delay), min/max clamp, min 0 scales to zero after idleToZero without requests, and any
// demand at zero starts one replica. No timers, no I/O: the controller calls it on its own tick.
import type { ModelDeploymentSpec } from "../spec/index.js";
import { initialReplicas } from "../spec/index.js";

/** One sample of the load the gateway saw for a model. */
export interface LoadObservation {
  /** ms since epoch. */
  at: number;
  /** Requests in flight through the gateway (proxied plus held while scaling from zero). */
  inFlight: number;
}

export type AutoscalerSpec = Pick<ModelDeploymentSpec, "replicas" | "autoscaling">;

export interface AutoscalerState {
  /** The last decision. */
  desired: number;
  /** When the current panic began; undefined when not panicking. */
  panicSince: number | undefined;
  /** Last time panic-window demand was over the threshold (panic ends a stable window after it). */
  panicLastOverAt: number | undefined;
  /** Recommendations within the last scaleDownDelay: desired is their maximum. */
  recommendations: Array<{ at: number; desired: number }>;
  /** Last time any demand was seen; idleToZero counts from here. */
  lastActiveAt: number;
}

export interface AutoscalerInput {
  /** Samples for this model; those older than the stable window are ignored. Any order. */
  observations: readonly LoadObservation[];
  /** Replicas ready to serve now (capacity for the panic test). */
  readyReplicas: number;
  spec: AutoscalerSpec;
  /** Undefined on the first call: the decision starts from spec.replicas.initial. */
  previous: AutoscalerState | undefined;
  now: number;
  /** ms since epoch of the last request the gateway saw; 0 if none. Catches requests between samples. */
  lastRequestAt?: number;
  /** A request is waiting for a replica (scale from zero). */
  waiting?: boolean;
  /** `berth scale MODEL N`: a manual floor replacing replicas.min (the ceiling grows to it if needed). */
  manualFloor?: number;
}

export type AutoscalerReason =
  | "initial"
  | "steady"
  | "scale-up"
  | "panic"
  | "scale-down"
  | "scale-down-delayed"
  | "scale-to-zero"
  | "scale-from-zero"
  | "fixed";

export interface AutoscalerInputs {
  current: number;
  readyReplicas: number;
  stableInFlight: number;
  panicInFlight: number;
  stableDesired: number;
  panicDesired: number;
  targetInFlight: number;
  panicking: boolean;
  floor: number;
  ceiling: number;
  idleMs: number;
}

export interface AutoscalerEvent {
  reason: AutoscalerReason;
  message: string;
  inputs: AutoscalerInputs;
}

export interface AutoscalerDecision {
  desired: number;
  state: AutoscalerState;
  event: AutoscalerEvent;
}

/** The replica bounds in force: a manual floor replaces min and lifts max if it is higher. */
export function replicaBounds(
  spec: AutoscalerSpec,
  manualFloor?: number,
): { floor: number; ceiling: number } {
  const floor = manualFloor ?? spec.replicas.min;
  return { floor, ceiling: Math.max(spec.replicas.max, floor) };
}

export function decideReplicas(input: AutoscalerInput): AutoscalerDecision {
  const decision = decide(input);
  // The first decision that keeps the initial count says so, rather than "steady" or "delayed".
  if (input.previous === undefined && decision.desired === decision.event.inputs.current) {
    return {
      ...decision,
      event: { ...decision.event, reason: "initial", message: `starting ${decision.desired}` },
    };
  }
  return decision;
}

function decide(input: AutoscalerInput): AutoscalerDecision {
  const { spec, now } = input;
  const policy = spec.autoscaling;
  const target = policy.targetInFlight;
  const { floor, ceiling } = replicaBounds(spec, input.manualFloor);
  const initial = clamp(input.manualFloor ?? initialReplicas(spec), floor, ceiling);
  const previous: AutoscalerState = input.previous ?? {
    desired: initial,
    panicSince: undefined,
    panicLastOverAt: undefined,
    recommendations: [{ at: now, desired: initial }],
    lastActiveAt: now,
  };
  const current = previous.desired;

  const stableInFlight = averageSince(input.observations, now - policy.stableWindow, now);
  const panicInFlight = averageSince(input.observations, now - policy.panicWindow, now);
  const latest = latestObservation(input.observations, now);
  const requestSeen = (input.lastRequestAt ?? 0) > previous.lastActiveAt;
  const demandNow = input.waiting === true || (latest?.inFlight ?? 0) > 0 || requestSeen;
  const lastActiveAt = Math.max(
    previous.lastActiveAt,
    input.lastRequestAt ?? 0,
    lastBusyAt(input.observations, now) ?? 0,
    input.waiting === true ? now : 0,
  );
  const idleMs = now - lastActiveAt;
  const stableDesired = Math.ceil(stableInFlight / target);
  const panicDesired = Math.ceil(panicInFlight / target);
  const inputs = (panicking: boolean): AutoscalerInputs => ({
    current,
    readyReplicas: input.readyReplicas,
    stableInFlight: round(stableInFlight),
    panicInFlight: round(panicInFlight),
    stableDesired,
    panicDesired,
    targetInFlight: target,
    panicking,
    floor,
    ceiling,
    idleMs,
  });
  const result = (
    desired: number,
    reason: AutoscalerReason,
    message: string,
    state: Omit<AutoscalerState, "desired" | "lastActiveAt">,
  ): AutoscalerDecision => ({
    desired,
    state: { ...state, desired, lastActiveAt },
    event: { reason, message, inputs: inputs(state.panicSince !== undefined) },
  });
  const calm = { panicSince: undefined, panicLastOverAt: undefined };

  if (!policy.enabled) {
    const fixed = clamp(input.manualFloor ?? initial, floor, ceiling);
    return result(fixed, "fixed", `autoscaling disabled: ${fixed} replicas`, {
      ...calm,
      recommendations: [{ at: now, desired: fixed }],
    });
  }

  if (current === 0) {
    if (demandNow || floor > 0) {
      const desired = clamp(1, floor, ceiling);
      return result(
        desired,
        "scale-from-zero",
        demandNow ? `demand at zero replicas: starting ${desired}` : `floor ${floor}: starting ${desired}`,
        { ...calm, recommendations: [{ at: now, desired }] },
      );
    }
    return result(0, "steady", "idle at zero replicas", {
      ...calm,
      recommendations: [{ at: now, desired: 0 }],
    });
  }

  // Scale to zero: only with a floor of 0, after idleToZero without any request, and not while
  // anything is in flight. idleToZero is the delay here; scaleDownDelay does not add to it.
  if (floor === 0 && idleMs >= policy.idleToZero && !demandNow) {
    return result(0, "scale-to-zero", `idle for ${idleMs} ms (idleToZero ${policy.idleToZero} ms)`, {
      ...calm,
      recommendations: [{ at: now, desired: 0 }],
    });
  }

  // Panic test against the capacity that serves now; a model whose replicas are all still
  // starting counts as one replica so that one slow cold start does not read as infinite demand.
  const capacityReplicas = Math.max(input.readyReplicas, 1);
  const overThreshold =
    panicInFlight > 0 && panicInFlight / target >= policy.panicThreshold * capacityReplicas;
  let panicSince = previous.panicSince;
  let panicLastOverAt = previous.panicLastOverAt;
  if (overThreshold) {
    panicSince ??= now;
    panicLastOverAt = now;
  } else if (panicSince !== undefined && now - (panicLastOverAt ?? panicSince) >= policy.stableWindow) {
    panicSince = undefined;
    panicLastOverAt = undefined;
  }
  const panicking = panicSince !== undefined;

  // While active a floor of 0 still keeps one replica: zero comes only from the idle rule above.
  const activeFloor = Math.max(floor, 1);
  const recommended = clamp(
    panicking ? Math.max(panicDesired, current) : stableDesired,
    activeFloor,
    ceiling,
  );
  const recommendations = [
    ...previous.recommendations.filter((entry) => entry.at > now - policy.scaleDownDelay && entry.at <= now),
    { at: now, desired: recommended },
  ];
  // Recommendations above the current ceiling (a spec that lowered max, a cleared manual floor)
  // must not keep replicas alive for scaleDownDelay: the bounds apply at once.
  const desired = clamp(Math.max(...recommendations.map((entry) => entry.desired)), activeFloor, ceiling);
  const state = { panicSince, panicLastOverAt, recommendations };

  if (panicking && previous.panicSince === undefined) {
    return result(
      desired,
      "panic",
      `${round(panicInFlight)} in flight over ${policy.panicWindow} ms ≥ ${policy.panicThreshold} × ${capacityReplicas} × ${target}`,
      state,
    );
  }
  if (desired > current) {
    return result(
      desired,
      panicking ? "panic" : "scale-up",
      `${current} → ${desired}: ${round(panicking ? panicInFlight : stableInFlight)} in flight, target ${target} per replica`,
      state,
    );
  }
  if (desired < current) {
    return result(
      desired,
      "scale-down",
      `${current} → ${desired}: ${round(stableInFlight)} in flight on average, lower for ${policy.scaleDownDelay} ms`,
      state,
    );
  }
  if (recommended < current) {
    return result(
      desired,
      "scale-down-delayed",
      `would scale ${current} → ${recommended}; waiting scaleDownDelay ${policy.scaleDownDelay} ms`,
      state,
    );
  }
  return result(desired, "steady", `${desired} replicas`, state);
}

/** Mean of the samples in (from, to]; 0 when there are none. */
function averageSince(observations: readonly LoadObservation[], from: number, to: number): number {
  let sum = 0;
  let count = 0;
  for (const observation of observations) {
    if (observation.at > from && observation.at <= to) {
      sum += observation.inFlight;
      count += 1;
    }
  }
  return count === 0 ? 0 : sum / count;
}

function latestObservation(
  observations: readonly LoadObservation[],
  now: number,
): LoadObservation | undefined {
  let latest: LoadObservation | undefined;
  for (const observation of observations) {
    if (observation.at <= now && (latest === undefined || observation.at > latest.at)) latest = observation;
  }
  return latest;
}

function lastBusyAt(observations: readonly LoadObservation[], now: number): number | undefined {
  let busyAt: number | undefined;
  for (const observation of observations) {
    if (
      observation.inFlight > 0 &&
      observation.at <= now &&
      (busyAt === undefined || observation.at > busyAt)
    ) {
      busyAt = observation.at;
    }
  }
  return busyAt;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
