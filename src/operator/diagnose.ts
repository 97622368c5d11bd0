// What is wrong with a model's pods, in words: an image that cannot be pulled (and which), the
// model-pull init container failing (its termination message, which carries the last log lines),
// a crash loop (the last exit), a pod the scheduler cannot place (the scheduler's own message).
// Pure: pods in, findings out. The conditions and events on the ModelDeployment are made from these.
import { z } from "zod";

/** The init container render.ts adds to pull the model (`berth model pull`). */
export const MODEL_PULL_CONTAINER = "fetch-model";
/** The container that serves the model. */
export const SERVER_CONTAINER = "server";

export type FindingReason =
  | "ModelPullFailed"
  | "ImagePullFailed"
  | "CrashLoopBackOff"
  | "Unschedulable"
  | "ModelPulling"
  | "ModelLoading";

export interface PodFinding {
  pod: string;
  reason: FindingReason;
  /** One sentence for people ("pod gpt2-abc: cannot pull image \"x\": ..."). */
  message: string;
  /** True for a failure (Degraded); false for a phase a healthy pod passes through. */
  problem: boolean;
}

const terminatedSchema = z.looseObject({
  exitCode: z.number().optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
  finishedAt: z.string().optional(),
});
const containerStatusSchema = z.looseObject({
  name: z.string(),
  image: z.string().optional(),
  ready: z.boolean().optional(),
  restartCount: z.number().optional(),
  state: z
    .looseObject({
      waiting: z.looseObject({ reason: z.string().optional(), message: z.string().optional() }).optional(),
      running: z.looseObject({}).optional(),
      terminated: terminatedSchema.optional(),
    })
    .optional(),
  lastState: z.looseObject({ terminated: terminatedSchema.optional() }).optional(),
});
export const podSchema = z.looseObject({
  metadata: z.looseObject({ name: z.string(), deletionTimestamp: z.string().optional() }),
  spec: z
    .looseObject({
      initContainers: z.array(z.looseObject({ name: z.string(), image: z.string().optional() })).optional(),
      containers: z.array(z.looseObject({ name: z.string(), image: z.string().optional() })).optional(),
    })
    .optional(),
  status: z
    .looseObject({
      phase: z.string().optional(),
      conditions: z
        .array(
          z.looseObject({
            type: z.string(),
            status: z.string(),
            reason: z.string().optional(),
            message: z.string().optional(),
          }),
        )
        .optional(),
      initContainerStatuses: z.array(containerStatusSchema).optional(),
      containerStatuses: z.array(containerStatusSchema).optional(),
    })
    .optional(),
});
export type PodJson = z.output<typeof podSchema>;
type ContainerStatus = z.output<typeof containerStatusSchema>;
type Terminated = z.output<typeof terminatedSchema>;

const IMAGE_PULL_REASONS = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "RegistryUnavailable",
]);

/** Whether a pod's server container is ready: the model is loaded (readiness is /readyz). */
export function isServing(pod: PodJson): boolean {
  return (pod.status?.containerStatuses ?? []).some(
    (status) => status.name === SERVER_CONTAINER && status.ready === true,
  );
}

/** What each pod is doing or failing at; a serving pod has nothing to say. Problems first. */
export function diagnosePods(pods: readonly PodJson[]): PodFinding[] {
  const findings: PodFinding[] = [];
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp || isServing(pod)) continue;
    const finding = diagnosePod(pod);
    if (finding) findings.push(finding);
  }
  return findings.sort((a, b) => Number(b.problem) - Number(a.problem));
}

function diagnosePod(pod: PodJson): PodFinding | undefined {
  const name = pod.metadata.name;
  const unschedulable = pod.status?.conditions?.find(
    (condition) => condition.type === "PodScheduled" && condition.status === "False",
  );
  if (unschedulable?.reason === "Unschedulable") {
    return {
      pod: name,
      reason: "Unschedulable",
      message: `pod ${name} cannot be scheduled: ${unschedulable.message ?? "no node fits it"}`,
      problem: true,
    };
  }
  const imageOf = (container: ContainerStatus) =>
    container.image ??
    [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find(
      (spec) => spec.name === container.name,
    )?.image;
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const container of statuses) {
    const waiting = container.state?.waiting;
    if (waiting?.reason && IMAGE_PULL_REASONS.has(waiting.reason)) {
      const image = imageOf(container);
      return {
        pod: name,
        reason: "ImagePullFailed",
        message: `pod ${name}: cannot pull image${image ? ` "${image}"` : ""} for container ${container.name} (${waiting.reason})${waiting.message ? `: ${waiting.message}` : ""}`,
        problem: true,
      };
    }
  }
  const modelPull = pod.status?.initContainerStatuses?.find((status) => status.name === MODEL_PULL_CONTAINER);
  if (modelPull) {
    const failed = failedRun(modelPull);
    if (failed) {
      return {
        pod: name,
        reason: "ModelPullFailed",
        message: `pod ${name}: the model pull (init container ${MODEL_PULL_CONTAINER}) failed${exitWords(failed)}${retries(modelPull)}`,
        problem: true,
      };
    }
    if (modelPull.state?.running) {
      return {
        pod: name,
        reason: "ModelPulling",
        message: `pod ${name}: pulling the model (init container ${MODEL_PULL_CONTAINER} is running)`,
        problem: false,
      };
    }
  }
  const server = pod.status?.containerStatuses?.find((status) => status.name === SERVER_CONTAINER);
  if (server) {
    const failed = failedRun(server);
    if (failed) {
      const looping = server.state?.waiting?.reason === "CrashLoopBackOff";
      return {
        pod: name,
        reason: "CrashLoopBackOff",
        message: `pod ${name}: container ${SERVER_CONTAINER} ${looping ? "is crash-looping" : "exited"}; last exit${exitWords(failed)}${retries(server)}`,
        problem: true,
      };
    }
    if (server.state?.running) {
      return {
        pod: name,
        reason: "ModelLoading",
        message: `pod ${name}: the server is running and not ready yet (loading the model)`,
        problem: false,
      };
    }
  }
  return undefined;
}

/** The failed run to report: the current one if it ended badly, else the last one while it backs off. */
function failedRun(status: ContainerStatus): Terminated | undefined {
  const current = status.state?.terminated;
  if (current && (current.exitCode ?? 0) !== 0) return current;
  if (status.state?.waiting?.reason === "CrashLoopBackOff" || status.state?.waiting?.reason === "Error") {
    return status.lastState?.terminated ?? { reason: status.state.waiting.reason };
  }
  const last = status.lastState?.terminated;
  // Restarted after a failure and not running yet: still the failure that matters.
  if (last && (last.exitCode ?? 0) !== 0 && !status.state?.running) return last;
  return undefined;
}

function exitWords(terminated: Terminated): string {
  const code = terminated.exitCode === undefined ? "" : ` with exit code ${terminated.exitCode}`;
  const reason = terminated.reason ? ` (${terminated.reason})` : "";
  const message = terminated.message?.trim();
  // The termination message (FallbackToLogsOnError: the last log lines): its last line says why.
  const last = message ? message.split("\n").filter(Boolean).at(-1) : undefined;
  return `${code}${reason}${last ? `: ${last}` : ""}`;
}

function retries(status: ContainerStatus): string {
  const count = status.restartCount ?? 0;
  return count > 0 ? ` (restarted ${count} time${count === 1 ? "" : "s"})` : "";
}
