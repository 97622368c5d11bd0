// The Kubernetes objects Berth renders and applies: their shape on the wire, the labels that mark
// them as Berth's, and where each kind lives in the API (so applying needs no discovery requests).

/** A Kubernetes object as JSON: what `berth render` prints and what server-side apply sends. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

export const LABEL_NAME = "app.kubernetes.io/name";
export const LABEL_INSTANCE = "app.kubernetes.io/instance";
export const LABEL_COMPONENT = "app.kubernetes.io/component";
export const LABEL_PART_OF = "app.kubernetes.io/part-of";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const LABEL_VERSION = "app.kubernetes.io/version";
export const MANAGED_BY = "berth";
/** The server-side apply field manager: the owner of every field Berth sets. */
export const FIELD_MANAGER = "berth";

/** Selects every object Berth rendered for one model deployment (prune and delete use it). */
export function instanceSelector(name: string): string {
  return `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_INSTANCE}=${name}`;
}

export interface ResourceType {
  kind: string;
  apiVersion: string;
  /** The plural resource name in URLs. */
  plural: string;
  namespaced: boolean;
}

/** Every kind `render` can produce, in apply order (what pods mount and run as comes first). */
export const RESOURCE_TYPES: readonly ResourceType[] = [
  { kind: "ServiceAccount", apiVersion: "v1", plural: "serviceaccounts", namespaced: true },
  { kind: "ConfigMap", apiVersion: "v1", plural: "configmaps", namespaced: true },
  { kind: "Service", apiVersion: "v1", plural: "services", namespaced: true },
  {
    kind: "PersistentVolumeClaim",
    apiVersion: "v1",
    plural: "persistentvolumeclaims",
    namespaced: true,
  },
  { kind: "Deployment", apiVersion: "apps/v1", plural: "deployments", namespaced: true },
  {
    kind: "HorizontalPodAutoscaler",
    apiVersion: "autoscaling/v2",
    plural: "horizontalpodautoscalers",
    namespaced: true,
  },
  { kind: "PodDisruptionBudget", apiVersion: "policy/v1", plural: "poddisruptionbudgets", namespaced: true },
  { kind: "NetworkPolicy", apiVersion: "networking.k8s.io/v1", plural: "networkpolicies", namespaced: true },
  { kind: "Ingress", apiVersion: "networking.k8s.io/v1", plural: "ingresses", namespaced: true },
  {
    kind: "ServiceMonitor",
    apiVersion: "monitoring.coreos.com/v1",
    plural: "servicemonitors",
    namespaced: true,
  },
  {
    kind: "PrometheusRule",
    apiVersion: "monitoring.coreos.com/v1",
    plural: "prometheusrules",
    namespaced: true,
  },
];

export function resourceTypeOf(object: Pick<KubeObject, "apiVersion" | "kind">): ResourceType {
  const type = RESOURCE_TYPES.find(
    (candidate) => candidate.kind === object.kind && candidate.apiVersion === object.apiVersion,
  );
  if (!type) throw new Error(`Berth does not manage ${object.apiVersion} ${object.kind}`);
  return type;
}

/** The URL path of a collection (`name` omitted) or of one object. */
export function resourcePath(type: ResourceType, namespace: string, name?: string): string {
  const root = type.apiVersion.includes("/") ? `/apis/${type.apiVersion}` : `/api/${type.apiVersion}`;
  const scope = type.namespaced ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${root}${scope}/${type.plural}${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;
}

/** "Deployment/gpt2": how objects are named in messages. */
export function objectRef(object: Pick<KubeObject, "kind" | "metadata">): string {
  return `${object.kind}/${object.metadata.name}`;
}
