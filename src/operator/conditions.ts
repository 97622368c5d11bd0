// The ModelDeployment's status, computed from what the cluster shows: its Deployment's rollout
// (rollout.ts reads it, as `berth deploy` does) and its pods (diagnose.ts). Pure: the reconciler
// writes the result through the status subresource. Conditions follow metav1.Condition: a
// CamelCase reason people can search for, a message in words, and lastTransitionTime kept while
// the status stays the same.
import { type DeploymentJson, rolloutState } from "../k8s/rollout.js";
import { diagnosePods, isServing, type PodFinding, type PodJson } from "./diagnose.js";

export type ConditionType = "Available" | "Progressing" | "Degraded" | "ModelReady";
export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration: number;
}

export interface ModelDeploymentStatus {
  observedGeneration: number;
  replicas: number;
  readyReplicas: number;
  desiredReplicas: number;
  /** The pods' label selector as text: the scale subresource's labelSelectorPath (for an HPA). */
  selector: string;
  conditions: Condition[];
}

/** A failure before anything reached the cluster: an invalid spec, an apply the API server refused. */
export interface ReconcileFailure {
  reason: "InvalidSpec" | "ApplyFailed";
  message: string;
}

export interface StatusInput {
  generation: number;
  selector: string;
  /** The Deployment as the informer has it; undefined before it exists. */
  deployment: DeploymentJson | undefined;
  pods: readonly PodJson[];
  failure?: ReconcileFailure;
  previous?: readonly Partial<Condition>[];
  now: Date;
}

/** At most this many pods are named in one message (a large model deployment has many alike). */
const FINDINGS_IN_MESSAGE = 3;

export function computeStatus(input: StatusInput): ModelDeploymentStatus {
  const { deployment, failure } = input;
  const desired = deployment?.spec?.replicas ?? 1;
  const ready = deployment?.status?.readyReplicas ?? 0;
  const findings = diagnosePods(input.pods);
  const problems = findings.filter((finding) => finding.problem);
  const serving = input.pods.filter((pod) => !pod.metadata.deletionTimestamp && isServing(pod)).length;

  const condition = (type: ConditionType, status: ConditionStatus, reason: string, message: string) =>
    withTransition(
      { type, status, reason, message, lastTransitionTime: "", observedGeneration: input.generation },
      input.previous,
      input.now,
    );

  const rollout = deployment ? rolloutState(deployment) : undefined;
  const conditions: Condition[] = [];

  // Available: requests can be served (or, scaled to zero, will be once the gateway wakes a replica).
  if (deployment && desired === 0) {
    conditions.push(
      condition("Available", "True", "ScaledToZero", "scaled to zero: the first request starts a replica"),
    );
  } else if (ready > 0 && deploymentCondition(deployment, "Available") !== "False") {
    conditions.push(condition("Available", "True", "ReplicasReady", `${ready}/${desired} replicas ready`));
  } else {
    const why = problems.length > 0 ? `: ${summarize(problems)}` : "";
    conditions.push(
      condition(
        "Available",
        "False",
        deployment ? "NoReplicasReady" : "NotCreated",
        deployment
          ? `0/${desired} replicas ready${why}`
          : (failure?.message ?? "the Deployment does not exist yet"),
      ),
    );
  }

  // Progressing: a rollout toward the current spec is under way.
  if (failure) {
    conditions.push(condition("Progressing", "False", failure.reason, failure.message));
  } else if (!rollout) {
    conditions.push(condition("Progressing", "True", "Creating", "creating the Deployment"));
  } else if (rollout.phase === "progressing") {
    conditions.push(condition("Progressing", "True", "RollingOut", `rolling out: ${rollout.message}`));
  } else if (rollout.phase === "failed") {
    conditions.push(condition("Progressing", "False", "ProgressDeadlineExceeded", rollout.message));
  } else {
    conditions.push(condition("Progressing", "False", "RolloutComplete", `rolled out: ${rollout.message}`));
  }

  // Degraded: something needs a person (a bad spec, a refused apply, a failing pod).
  if (failure) {
    conditions.push(condition("Degraded", "True", failure.reason, failure.message));
  } else if (problems.length > 0) {
    conditions.push(condition("Degraded", "True", (problems[0] as PodFinding).reason, summarize(problems)));
  } else if (rollout?.phase === "failed") {
    conditions.push(condition("Degraded", "True", "ProgressDeadlineExceeded", rollout.message));
  } else {
    conditions.push(condition("Degraded", "False", "AsExpected", "no problems found"));
  }

  // ModelReady: a replica has the model loaded (its server container passed /readyz).
  if (serving > 0) {
    conditions.push(
      condition(
        "ModelReady",
        "True",
        "ModelLoaded",
        `the model is loaded in ${serving} replica${serving === 1 ? "" : "s"}`,
      ),
    );
  } else if (deployment && desired === 0) {
    conditions.push(condition("ModelReady", "False", "ScaledToZero", "no replicas: scaled to zero"));
  } else if (findings.length > 0) {
    const first = findings[0] as PodFinding;
    conditions.push(
      condition(
        "ModelReady",
        "False",
        first.reason,
        summarize(findings.filter((f) => f.reason === first.reason)),
      ),
    );
  } else if (failure) {
    conditions.push(condition("ModelReady", "False", failure.reason, failure.message));
  } else {
    conditions.push(condition("ModelReady", "False", "NoReplicas", "no replica has started yet"));
  }

  return {
    observedGeneration: input.generation,
    replicas: deployment?.status?.replicas ?? 0,
    readyReplicas: ready,
    desiredReplicas: desired,
    selector: input.selector,
    conditions,
  };
}

function deploymentCondition(deployment: DeploymentJson | undefined, type: string): string | undefined {
  return deployment?.status?.conditions?.find((condition) => condition.type === type)?.status;
}

function summarize(findings: readonly PodFinding[]): string {
  const shown = findings.slice(0, FINDINGS_IN_MESSAGE).map((finding) => finding.message);
  const more = findings.length - shown.length;
  return `${shown.join("; ")}${more > 0 ? `; and ${more} more pod${more === 1 ? "" : "s"}` : ""}`;
}

/** lastTransitionTime changes only when the status does (a new reason or message is not a transition). */
function withTransition(
  condition: Condition,
  previous: readonly Partial<Condition>[] | undefined,
  now: Date,
): Condition {
  const before = previous?.find((candidate) => candidate.type === condition.type);
  const unchanged = before?.status === condition.status && before.lastTransitionTime;
  return {
    ...condition,
    lastTransitionTime: unchanged
      ? (before.lastTransitionTime as string)
      : now.toISOString().replace(/\.\d+Z$/, "Z"),
  };
}
