// The Kubernetes side of replicas: a model's replica count is its Deployment's, changed through the
// scale subresource, so `berth scale` works on a cluster as it does locally.
import type { KubeClient } from "../k8s/client.js";
import { K8sError } from "../k8s/errors.js";

/**
 * The field manager of imperative scaling. `berth deploy` takes spec.replicas back from it without
 * asking (the spec wins on deploy, as with kubectl apply); changes by other managers are reported.
 */
export const SCALE_FIELD_MANAGER = "berth-scale";

export interface ScaleResult {
  previousReplicas: number;
  replicas: number;
  /** Set when an HPA manages the Deployment: it will move the count back within its bounds. */
  autoscaler?: { minReplicas: number; maxReplicas: number };
}

const scalePath = (namespace: string, name: string) =>
  `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(name)}/scale`;

/** Sets a model Deployment's replica count (the scale subresource: needs RBAC `patch deployments/scale`). */
export async function scaleDeployment(
  kube: KubeClient,
  name: string,
  namespace: string,
  replicas: number,
): Promise<ScaleResult> {
  if (!Number.isInteger(replicas) || replicas < 0)
    throw new RangeError(`replicas must be an integer ≥ 0, not ${replicas}`);
  const before = await kube.request<{ spec?: { replicas?: number } }>({
    method: "GET",
    path: scalePath(namespace, name),
    objectRef: `Deployment/${name}`,
    allowStatus: [404],
  });
  if (before.status === 404) {
    throw new K8sError(
      "BERTH_K8S_API",
      `Deployment/${name} does not exist in namespace "${namespace}"; deploy it first`,
    );
  }
  await kube.request({
    method: "PATCH",
    path: scalePath(namespace, name),
    query: { fieldManager: SCALE_FIELD_MANAGER },
    body: { spec: { replicas } },
    contentType: "application/merge-patch+json",
    objectRef: `Deployment/${name}`,
  });
  const hpa = await kube.request<{ spec?: { minReplicas?: number; maxReplicas?: number } }>({
    method: "GET",
    path: `/apis/autoscaling/v2/namespaces/${encodeURIComponent(namespace)}/horizontalpodautoscalers/${encodeURIComponent(name)}`,
    allowStatus: [404, 403],
  });
  const autoscaler =
    hpa.status === 200 && hpa.body.spec?.maxReplicas !== undefined
      ? { minReplicas: hpa.body.spec.minReplicas ?? 1, maxReplicas: hpa.body.spec.maxReplicas }
      : undefined;
  return {
    previousReplicas: before.body.spec?.replicas ?? 0,
    replicas,
    ...(autoscaler ? { autoscaler } : {}),
  };
}
