// One reconcile of one ModelDeployment: read it from the cache, validate it with the zod spec,
// render it with render.ts (the renderer `berth render` and `berth deploy` use), server-side apply
// it with apply.ts as field manager "berth-operator" with an owner reference to the resource
// (pruning what the spec no longer renders), then write status and events from what the cluster
// shows. Idempotent: it remembers nothing between calls, so a restarted operator just runs it again.
import { applyObjects, type ObjectOutcome } from "../k8s/apply.js";
import type { KubeClient } from "../k8s/client.js";
import { CR_API_VERSION, CRD_KIND } from "../k8s/crd.js";
import { type KubeObject, LABEL_INSTANCE, LABEL_NAME } from "../k8s/objects.js";
import { renderDeployment } from "../k8s/render.js";
import { deploymentSchema } from "../k8s/rollout.js";
import type { ModelDeployment } from "../spec/schema.js";
import { berthAutoscales } from "./autoscale.js";
import {
  type Condition,
  computeStatus,
  type ModelDeploymentStatus,
  type ReconcileFailure,
} from "./conditions.js";
import { podSchema } from "./diagnose.js";
import type { EventRecorder, EventSubject } from "./events.js";
import type { Informer, LiveObject } from "./informer.js";
import { ownerReference, readModelDeployment, statusPath } from "./resource.js";

export const OPERATOR_FIELD_MANAGER = "berth-operator";

/** What the autoscale loop (src/operator/autoscale.ts) is told about the models it scales. */
export interface ScaledModels {
  track(model: { namespace: string; name: string; deployment: ModelDeployment }): void;
  untrack(key: string): void;
  /** The replica count last decided for "namespace/name" (status.desiredReplicas), if any yet. */
  desired(key: string): number | undefined;
}

export interface ReconcileContext {
  client: KubeClient;
  resources: Informer;
  deployments: Informer;
  pods: Informer;
  events: EventRecorder;
  autoscaler?: ScaledModels;
  log?: (line: string) => void;
}

/** Reconciles "namespace/name". Throws when it must be retried (the queue backs off). */
export async function reconcile(key: string, context: ReconcileContext): Promise<void> {
  const [namespace = "", name = ""] = key.split("/");
  const resource = context.resources.get(namespace, name);
  if (!resource || resource.metadata.deletionTimestamp) {
    // Gone or going: the garbage collector deletes what it owned.
    context.autoscaler?.untrack(key);
    return;
  }
  const subject = subjectOf(resource);

  const reading = readModelDeployment(resource);
  if (!reading.ok) {
    context.autoscaler?.untrack(key);
    await writeStatus(context, resource, { reason: "InvalidSpec", message: reading.message });
    await context.events.record(subject, "Warning", "InvalidSpec", reading.message);
    return; // nothing to retry: a new generation of the resource queues it again
  }
  const { deployment } = reading;

  // Berth's autoscale loop sets the replica count (max > min, not the cpu HPA): no HPA is rendered,
  // and the apply leaves spec.replicas to the loop's scale writes.
  const scaled = berthAutoscales(deployment);
  const objects = renderDeployment(deployment, { namespace })
    .filter((object) => !(scaled && object.kind === "HorizontalPodAutoscaler"))
    .map((object) =>
      owned(scaled && object.kind === "Deployment" ? withoutReplicas(object) : object, resource),
    );
  let outcomes: ObjectOutcome[];
  try {
    outcomes = (
      await applyObjects(context.client, objects, { prune: true, fieldManager: OPERATOR_FIELD_MANAGER })
    ).objects;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await writeStatus(context, resource, { reason: "ApplyFailed", message });
    await context.events.record(subject, "Warning", "ApplyFailed", message);
    throw error;
  }
  const changed = outcomes.filter((outcome) => outcome.action !== "unchanged");
  if (changed.length > 0) {
    const words = changed.map((outcome) => `${outcome.action} ${outcome.kind}/${outcome.name}`).join(", ");
    context.log?.(`${key}: ${words}`);
    await context.events.record(subject, "Normal", "Applied", words);
  }

  if (scaled) context.autoscaler?.track({ namespace, name, deployment });
  else context.autoscaler?.untrack(key);

  await writeStatus(context, resource, undefined, subject);
}

export function subjectOf(resource: LiveObject): EventSubject {
  return {
    apiVersion: CR_API_VERSION,
    kind: CRD_KIND,
    namespace: resource.metadata.namespace ?? "",
    name: resource.metadata.name,
    uid: resource.metadata.uid,
  };
}

function withoutReplicas(object: KubeObject): KubeObject {
  const { replicas: _owned, ...spec } = object.spec as Record<string, unknown>;
  return { ...object, spec };
}

/** The rendered object, owned by the resource (controller: true, so only one controller claims it). */
function owned(object: KubeObject, resource: LiveObject): KubeObject {
  return { ...object, metadata: { ...object.metadata, ownerReferences: [ownerReference(resource)] } };
}

/** Computes the status from the caches and writes it when it changed; Warning events for problems. */
async function writeStatus(
  context: ReconcileContext,
  resource: LiveObject,
  failure: ReconcileFailure | undefined,
  subject?: EventSubject,
): Promise<void> {
  const { namespace = "", name } = resource.metadata;
  const liveDeployment = context.deployments.get(namespace, name);
  const deployment =
    liveDeployment && isOwnedBy(liveDeployment, resource)
      ? deploymentSchema.safeParse(liveDeployment).data
      : undefined;
  const pods = context.pods
    .list(
      (pod) =>
        pod.metadata.namespace === namespace &&
        pod.metadata.labels?.[LABEL_INSTANCE] === name &&
        pod.metadata.labels?.[LABEL_NAME] === name,
    )
    .flatMap((pod) => podSchema.safeParse(pod).data ?? []);
  const previous = (resource.status as { conditions?: Partial<Condition>[] } | undefined)?.conditions;
  const status = computeStatus({
    generation: resource.metadata.generation ?? 0,
    selector: selectorOf(name),
    deployment,
    pods,
    ...(failure ? { failure } : {}),
    ...(previous ? { previous } : {}),
    now: new Date(),
  });
  // The autoscale loop's decision may be ahead of the Deployment's spec (written, not yet watched).
  const decided = failure ? undefined : context.autoscaler?.desired(`${namespace}/${name}`);
  if (decided !== undefined) status.desiredReplicas = decided;
  if (subject) await recordTransitions(context, subject, previous, status);
  if (sameStatus(resource.status, status)) return;
  const response = await context.client.request({
    method: "PATCH",
    path: statusPath(namespace, name),
    body: { status },
    contentType: "application/merge-patch+json",
    objectRef: `${CRD_KIND}/${name}`,
    allowStatus: [404],
  });
  if (response.status === 404) return; // deleted meanwhile
}

/** Warning events for problems (repeats are counted by the recorder); Normal ones when it becomes Available. */
async function recordTransitions(
  context: ReconcileContext,
  subject: EventSubject,
  previous: readonly Partial<Condition>[] | undefined,
  status: ModelDeploymentStatus,
): Promise<void> {
  const find = (conditions: readonly Partial<Condition>[] | undefined, type: string) =>
    conditions?.find((condition) => condition.type === type);
  const degraded = find(status.conditions, "Degraded");
  if (degraded?.status === "True") {
    await context.events.record(subject, "Warning", degraded.reason ?? "Degraded", degraded.message ?? "");
  }
  const available = find(status.conditions, "Available");
  if (available?.status === "True" && find(previous, "Available")?.status !== "True") {
    await context.events.record(subject, "Normal", available.reason ?? "Available", available.message ?? "");
  }
}

function isOwnedBy(object: LiveObject, resource: LiveObject): boolean {
  return (object.metadata.ownerReferences ?? []).some((reference) => reference.uid === resource.metadata.uid);
}

/** The pods' selector (the labels render.ts selects pods by), as text for the scale subresource. */
export function selectorOf(name: string): string {
  return `${LABEL_NAME}=${name},${LABEL_INSTANCE}=${name}`;
}

/** Compared by content: the API server returns a resource's fields sorted, not in the order written. */
function sameStatus(current: unknown, next: ModelDeploymentStatus): boolean {
  return canonical(current ?? null) === canonical(next);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === "object" && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => a.localeCompare(b)))
      : item,
  );
}
