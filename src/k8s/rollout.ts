// Waiting for Deployments to roll out: a pure reading of a Deployment's status (what kubectl rollout
// status reports), and one list + watch per namespace that follows every Deployment of a deploy at once.
import { z } from "zod";
import type { KubeClient } from "./client.js";
import { K8sError } from "./errors.js";
import { LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY, RESOURCE_TYPES, resourcePath } from "./objects.js";

const conditionSchema = z.looseObject({
  type: z.string(),
  status: z.string(),
  reason: z.string().optional(),
  message: z.string().optional(),
});

export const deploymentSchema = z.looseObject({
  metadata: z.looseObject({
    name: z.string(),
    namespace: z.string().optional(),
    generation: z.number().optional(),
    resourceVersion: z.string().optional(),
  }),
  spec: z.looseObject({ replicas: z.number().optional() }).optional(),
  status: z
    .looseObject({
      observedGeneration: z.number().optional(),
      replicas: z.number().optional(),
      updatedReplicas: z.number().optional(),
      readyReplicas: z.number().optional(),
      availableReplicas: z.number().optional(),
      unavailableReplicas: z.number().optional(),
      conditions: z.array(conditionSchema).optional(),
    })
    .optional(),
});
export type DeploymentJson = z.output<typeof deploymentSchema>;

export interface RolloutState {
  phase: "progressing" | "complete" | "failed";
  /** One line for people: generation, replica counts, conditions. */
  message: string;
}

/**
 * Where a Deployment's rollout stands. `minGeneration` is the generation the apply produced: until
 * the controller has observed it, the status describes the previous spec and proves nothing.
 */
export function rolloutState(deployment: DeploymentJson, minGeneration = 0): RolloutState {
  const generation = Math.max(deployment.metadata.generation ?? 0, minGeneration);
  const status = deployment.status ?? {};
  const observed = status.observedGeneration ?? 0;
  const desired = deployment.spec?.replicas ?? 1;
  const updated = status.updatedReplicas ?? 0;
  const available = status.availableReplicas ?? 0;
  const total = status.replicas ?? 0;
  const conditions = (status.conditions ?? [])
    .map(
      (condition) =>
        `${condition.type}=${condition.status}${condition.reason ? ` (${condition.reason})` : ""}`,
    )
    .join(", ");
  const counts = `generation ${generation} observed ${observed}; ${updated}/${desired} updated, ${available}/${desired} available${
    total > updated ? `, ${total - updated} old` : ""
  }${conditions ? `; ${conditions}` : ""}`;

  if (observed < generation) return { phase: "progressing", message: counts };
  const progressing = status.conditions?.find((condition) => condition.type === "Progressing");
  if (progressing?.reason === "ProgressDeadlineExceeded") {
    return { phase: "failed", message: `${counts}: ${progressing.message ?? "progress deadline exceeded"}` };
  }
  if (updated < desired || total > updated || available < updated)
    return { phase: "progressing", message: counts };
  return { phase: "complete", message: counts };
}

export interface RolloutTarget {
  namespace: string;
  name: string;
  /** metadata.generation after the apply. */
  generation: number;
}

export interface WaitOptions {
  timeoutMs: number;
  /** Called with a line whenever a Deployment's state changes. */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

const WATCH_SECONDS = 60;
const DEPLOYMENTS = RESOURCE_TYPES.find((type) => type.kind === "Deployment");
const PODS = { kind: "Pod", apiVersion: "v1", plural: "pods", namespaced: true };

const deploymentListSchema = z.looseObject({
  metadata: z.looseObject({ resourceVersion: z.string().optional() }),
  items: z.array(deploymentSchema),
});

/** Waits until every target is rolled out; throws BERTH_K8S_ROLLOUT_FAILED or _TIMEOUT naming the laggards. */
export async function waitForRollouts(
  client: KubeClient,
  targets: readonly RolloutTarget[],
  options: WaitOptions,
): Promise<void> {
  if (targets.length === 0) return;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  const onOuterAbort = () => controller.abort();
  options.signal?.addEventListener("abort", onOuterAbort);
  const latest = new Map<string, RolloutState>();
  const key = (namespace: string, name: string) => `${namespace}/${name}`;
  const report = (target: RolloutTarget, state: RolloutState) => {
    const id = key(target.namespace, target.name);
    if (latest.get(id)?.message === state.message) return;
    latest.set(id, state);
    options.onProgress?.(`${target.namespace}/${target.name}: ${state.phase}: ${state.message}`);
  };
  try {
    const byNamespace = new Map<string, RolloutTarget[]>();
    for (const target of targets)
      byNamespace.set(target.namespace, [...(byNamespace.get(target.namespace) ?? []), target]);
    await Promise.all(
      [...byNamespace].map(([namespace, inNamespace]) =>
        followNamespace(client, namespace, inNamespace, report, controller.signal),
      ),
    );
  } catch (error) {
    if (!controller.signal.aborted || error instanceof K8sError) {
      // Stop the other namespaces' watches: the deploy has failed.
      controller.abort();
      throw error;
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onOuterAbort);
  }
  if (controller.signal.aborted) {
    if (options.signal?.aborted) return;
    const pending = targets.filter(
      (target) => latest.get(key(target.namespace, target.name))?.phase !== "complete",
    );
    const diagnoses = await Promise.all(
      pending.map((target) => diagnosePods(client, target).catch(() => [])),
    );
    const lines = pending.map((target, index) => {
      const state = latest.get(key(target.namespace, target.name));
      const pods = diagnoses[index] ?? [];
      return `${target.namespace}/${target.name}: ${state?.message ?? "not seen"}${pods.length ? `\n    ${pods.join("\n    ")}` : ""}`;
    });
    throw new K8sError(
      "BERTH_K8S_ROLLOUT_TIMEOUT",
      `${pending.length} of ${targets.length} deployments did not become available within ${Math.round(options.timeoutMs / 1000)}s:\n  ${lines.join("\n  ")}`,
    );
  }
}

async function followNamespace(
  client: KubeClient,
  namespace: string,
  targets: readonly RolloutTarget[],
  report: (target: RolloutTarget, state: RolloutState) => void,
  signal: AbortSignal,
): Promise<void> {
  if (!DEPLOYMENTS) throw new Error("unreachable: Deployment is a rendered kind");
  const byName = new Map(targets.map((target) => [target.name, target]));
  const complete = new Set<string>();
  const selector = `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_INSTANCE} in (${[...byName.keys()].join(",")})`;
  const path = resourcePath(DEPLOYMENTS, namespace);
  const observe = (deployment: DeploymentJson): void => {
    const target = byName.get(deployment.metadata.name);
    if (!target) return;
    const state = rolloutState(deployment, target.generation);
    report(target, state);
    if (state.phase === "failed") {
      throw new K8sError(
        "BERTH_K8S_ROLLOUT_FAILED",
        `${namespace}/${target.name}: rollout failed: ${state.message}`,
      );
    }
    if (state.phase === "complete") complete.add(target.name);
    else complete.delete(target.name);
  };

  while (!signal.aborted) {
    const listed = await client.request({ method: "GET", path, query: { labelSelector: selector }, signal });
    const list = deploymentListSchema.parse(listed.body);
    for (const deployment of list.items) observe(deployment);
    for (const name of byName.keys()) {
      if (!list.items.some((deployment) => deployment.metadata.name === name)) {
        throw new K8sError("BERTH_K8S_ROLLOUT_FAILED", `${namespace}/${name}: the Deployment does not exist`);
      }
    }
    if (complete.size === byName.size) return;
    const finished = await client.watch(
      path,
      {
        labelSelector: selector,
        resourceVersion: list.metadata.resourceVersion,
        allowWatchBookmarks: "true",
        // A bounded watch: the server ends it and Berth re-lists, so a watch a proxy silently dropped
        // costs at most this long.
        timeoutSeconds: String(WATCH_SECONDS),
      },
      (event) => {
        if (event.type === "BOOKMARK") return false;
        const deployment = deploymentSchema.parse(event.object);
        if (event.type === "DELETED" && byName.has(deployment.metadata.name)) {
          throw new K8sError(
            "BERTH_K8S_ROLLOUT_FAILED",
            `${namespace}/${deployment.metadata.name}: the Deployment was deleted during the rollout`,
          );
        }
        observe(deployment);
        return complete.size === byName.size;
      },
      signal,
    );
    if (finished && complete.size === byName.size) return;
  }
}

const podListSchema = z.looseObject({
  items: z.array(
    z.looseObject({
      metadata: z.looseObject({ name: z.string() }),
      spec: z.looseObject({ nodeName: z.string().optional() }).optional(),
      status: z
        .looseObject({
          phase: z.string().optional(),
          conditions: z.array(conditionSchema).optional(),
          containerStatuses: z
            .array(
              z.looseObject({
                name: z.string(),
                state: z
                  .looseObject({
                    waiting: z
                      .looseObject({ reason: z.string().optional(), message: z.string().optional() })
                      .optional(),
                  })
                  .optional(),
              }),
            )
            .optional(),
        })
        .optional(),
    }),
  ),
});

/** Where a Deployment's pods stand, one line a pod: phase, node, and why not ready (unschedulable, image pull, crash loop). */
async function diagnosePods(client: KubeClient, target: RolloutTarget): Promise<string[]> {
  const listed = await client.request({
    method: "GET",
    path: resourcePath(PODS, target.namespace),
    query: { labelSelector: `${LABEL_INSTANCE}=${target.name}` },
  });
  const pods = podListSchema.parse(listed.body).items;
  if (pods.length === 0) return ["no pods (see the ReplicaSet's events: kubectl describe replicaset)"];
  return pods.map((pod) => {
    const reasons = [
      ...(pod.status?.conditions ?? [])
        .filter((condition) => condition.status === "False")
        .map(
          (condition) =>
            `${condition.type}=False${condition.reason ? ` ${condition.reason}` : ""}${condition.message ? `: ${condition.message}` : ""}`,
        ),
      ...(pod.status?.containerStatuses ?? [])
        .filter((container) => container.state?.waiting?.reason)
        .map(
          (container) =>
            `${container.name}: ${container.state?.waiting?.reason} ${container.state?.waiting?.message ?? ""}`,
        ),
    ];
    const node = pod.spec?.nodeName ? ` on ${pod.spec.nodeName}` : " (not scheduled)";
    return `pod ${pod.metadata.name} ${pod.status?.phase ?? "?"}${node}${reasons.length ? `: ${reasons.join("; ")}` : ""}`;
  });
}
