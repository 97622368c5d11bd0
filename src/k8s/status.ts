// What a model deployment looks like on the cluster now: its Deployment's rollout, its HPA's desired
// count, and where its pods run. Read-only; used by `berth k8s status` (and `berth status --k8s`).
import { z } from "zod";
import type { KubeClient } from "./client.js";
import { LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY, RESOURCE_TYPES, resourcePath } from "./objects.js";
import { deploymentSchema, rolloutState } from "./rollout.js";

export interface PodSummary {
  name: string;
  phase: string;
  ready: boolean;
  node?: string;
  restarts: number;
}

export interface KubernetesModelStatus {
  name: string;
  namespace: string;
  deployed: boolean;
  rollout?: "progressing" | "complete" | "failed";
  message?: string;
  desiredReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  updatedReplicas?: number;
  image?: string;
  autoscaler?: {
    minReplicas?: number;
    maxReplicas: number;
    desiredReplicas?: number;
    currentReplicas?: number;
  };
  pods: PodSummary[];
}

const hpaSchema = z.looseObject({
  spec: z.looseObject({ minReplicas: z.number().optional(), maxReplicas: z.number() }),
  status: z
    .looseObject({ desiredReplicas: z.number().optional(), currentReplicas: z.number().optional() })
    .optional(),
});

const podListSchema = z.looseObject({
  items: z.array(
    z.looseObject({
      metadata: z.looseObject({ name: z.string() }),
      spec: z.looseObject({ nodeName: z.string().optional() }).optional(),
      status: z
        .looseObject({
          phase: z.string().optional(),
          conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).optional(),
          containerStatuses: z.array(z.looseObject({ restartCount: z.number().optional() })).optional(),
        })
        .optional(),
    }),
  ),
});

const typeOf = (kind: string) => {
  const type = RESOURCE_TYPES.find((candidate) => candidate.kind === kind);
  if (!type) throw new Error(`unknown kind ${kind}`);
  return type;
};

export async function kubernetesModelStatus(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<KubernetesModelStatus> {
  const [deploymentResponse, hpaResponse, podsResponse] = await Promise.all([
    client.request({
      method: "GET",
      path: resourcePath(typeOf("Deployment"), namespace, name),
      allowStatus: [404],
    }),
    client.request({
      method: "GET",
      path: resourcePath(typeOf("HorizontalPodAutoscaler"), namespace, name),
      allowStatus: [404],
    }),
    client.request({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
      query: { labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_INSTANCE}=${name}` },
    }),
  ]);
  const pods = podListSchema.parse(podsResponse.body).items.map((pod) => ({
    name: pod.metadata.name,
    phase: pod.status?.phase ?? "Unknown",
    ready:
      pod.status?.conditions?.some(
        (condition) => condition.type === "Ready" && condition.status === "True",
      ) ?? false,
    ...(pod.spec?.nodeName ? { node: pod.spec.nodeName } : {}),
    restarts: (pod.status?.containerStatuses ?? []).reduce(
      (sum, container) => sum + (container.restartCount ?? 0),
      0,
    ),
  }));
  if (deploymentResponse.status === 404) return { name, namespace, deployed: false, pods };
  const deployment = deploymentSchema.parse(deploymentResponse.body);
  const state = rolloutState(deployment);
  const containers = (
    deploymentResponse.body as { spec?: { template?: { spec?: { containers?: Array<{ image?: string }> } } } }
  ).spec?.template?.spec?.containers;
  const hpa = hpaResponse.status === 404 ? undefined : hpaSchema.parse(hpaResponse.body);
  return {
    name,
    namespace,
    deployed: true,
    rollout: state.phase,
    message: state.message,
    desiredReplicas: deployment.spec?.replicas ?? 1,
    readyReplicas: deployment.status?.readyReplicas ?? 0,
    availableReplicas: deployment.status?.availableReplicas ?? 0,
    updatedReplicas: deployment.status?.updatedReplicas ?? 0,
    ...(containers?.[0]?.image ? { image: containers[0].image } : {}),
    ...(hpa
      ? {
          autoscaler: {
            ...(hpa.spec.minReplicas === undefined ? {} : { minReplicas: hpa.spec.minReplicas }),
            maxReplicas: hpa.spec.maxReplicas,
            ...(hpa.status?.desiredReplicas === undefined
              ? {}
              : { desiredReplicas: hpa.status.desiredReplicas }),
            ...(hpa.status?.currentReplicas === undefined
              ? {}
              : { currentReplicas: hpa.status.currentReplicas }),
          },
        }
      : {}),
    pods,
  };
}

/** A few lines per model for people. */
export function formatModelStatus(status: KubernetesModelStatus): string {
  if (!status.deployed) return `${status.namespace}/${status.name}: not deployed\n`;
  const autoscaler = status.autoscaler
    ? `, autoscaler ${status.autoscaler.minReplicas ?? 1}..${status.autoscaler.maxReplicas} wants ${status.autoscaler.desiredReplicas ?? "?"}`
    : "";
  const lines = [
    `${status.namespace}/${status.name}: ${status.rollout}, ${status.availableReplicas}/${status.desiredReplicas} available${autoscaler}${status.image ? `, image ${status.image}` : ""}`,
    `  ${status.message}`,
    ...status.pods.map(
      (pod) =>
        `  pod ${pod.name} ${pod.phase}${pod.ready ? " ready" : ""}${pod.node ? ` on ${pod.node}` : ""}${pod.restarts ? `, ${pod.restarts} restarts` : ""}`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}
