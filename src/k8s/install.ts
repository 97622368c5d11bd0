// What `berth install` puts in a cluster, as objects (pure): the CRD, a namespace, the controller
// (`berth operator`) and gateway (`berth gateway`) Deployments, their ServiceAccounts, a Service for the
// gateway, and RBAC rendered from the one list of API calls each makes (OPERATOR_API_CALLS, GATEWAY_API_CALLS:
// the operator and gateway code owners keep those lists true; test/k8s/rbac.test.ts shows each verb is needed).
import { modelDeploymentCrd } from "./crd.js";
import {
  type KubeObject,
  LABEL_COMPONENT,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  LABEL_PART_OF,
  LABEL_VERSION,
  MANAGED_BY,
} from "./objects.js";
import { containerSecurityContext, imageVersion, RUN_AS_USER } from "./render.js";

export const INSTALL_NAMESPACE = "berth-system";
export const OPERATOR_NAME = "berth-operator";
export const GATEWAY_NAME = "berth-gateway";
export const DEFAULT_IMAGE = "ghcr.io/berth-dev/berth:0.1.0";
export const GATEWAY_PORT = 8080;
/** `berth operator --health-port`: /healthz, /readyz and /metrics. */
export const OPERATOR_HEALTH_PORT = 8081;
/** Where the gateway finds the Secret of --api-keys-secret: `apiKeysFrom: file:/etc/berth/api-keys/KEY`. */
export const API_KEYS_MOUNT = "/etc/berth/api-keys";

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete";

/** An API call a component makes: on which resource, with which verbs, where, and why. */
export interface ApiCall {
  /** API group ("" for core). */
  group: string;
  /** Plural resource, with a subresource after a slash ("modeldeployments/status"). */
  resource: string;
  verbs: readonly Verb[];
  /** cluster: in every namespace (a ClusterRole); install: only in the install namespace (a Role). */
  scope: "cluster" | "install";
  why: string;
}

// Every kind render.ts can produce: the operator applies them by SSA (patch), prunes (delete), and lists
// metadata of all of them for prune even where a kind is not rendered (list).
const RENDERED: ReadonlyArray<readonly [group: string, resources: readonly string[]]> = [
  ["", ["serviceaccounts", "configmaps", "services", "persistentvolumeclaims"]],
  ["apps", ["deployments"]],
  ["autoscaling", ["horizontalpodautoscalers"]],
  ["policy", ["poddisruptionbudgets"]],
  ["networking.k8s.io", ["networkpolicies", "ingresses"]],
  ["monitoring.coreos.com", ["servicemonitors", "prometheusrules"]],
];

/** What `berth operator` calls (agreed on /work/coord/BOARD.md with its owner and the autoscale loop's). */
export const OPERATOR_API_CALLS: readonly ApiCall[] = [
  {
    group: "berth.dev",
    resource: "modeldeployments",
    verbs: ["list", "watch"],
    scope: "cluster",
    why: "the informer",
  },
  {
    group: "berth.dev",
    resource: "modeldeployments/status",
    verbs: ["patch"],
    scope: "cluster",
    why: "conditions, replicas, observedGeneration",
  },
  ...RENDERED.flatMap(([group, resources]) =>
    resources.map(
      (resource): ApiCall => ({
        group,
        resource,
        verbs: ["list", "patch", "delete"],
        scope: "cluster",
        why: "server-side apply of the rendered objects, metadata list and prune",
      }),
    ),
  ),
  {
    group: "apps",
    resource: "deployments",
    verbs: ["watch"],
    scope: "cluster",
    why: "rollout state for status conditions; the autoscale loop",
  },
  {
    group: "apps",
    resource: "deployments/scale",
    verbs: ["patch"],
    scope: "cluster",
    why: "the autoscale loop (field manager berth-autoscaler)",
  },
  {
    group: "",
    resource: "pods",
    verbs: ["list", "watch"],
    scope: "cluster",
    why: "status words: image pull, crash loop",
  },
  {
    group: "",
    resource: "events",
    verbs: ["create", "patch"],
    scope: "cluster",
    why: "events on the ModelDeployment",
  },
  {
    group: "coordination.k8s.io",
    resource: "leases",
    verbs: ["get", "create", "update"],
    scope: "install",
    why: "leader election (Lease berth-operator)",
  },
  {
    group: "discovery.k8s.io",
    resource: "endpointslices",
    verbs: ["list", "watch"],
    scope: "install",
    why: "the autoscale loop finds the gateway pods it reads load from (an operator outside the cluster also needs pods/proxy get there)",
  },
];

/** What `berth gateway` calls. */
export const GATEWAY_API_CALLS: readonly ApiCall[] = [
  {
    group: "berth.dev",
    resource: "modeldeployments",
    verbs: ["list", "watch"],
    scope: "cluster",
    why: "models, routing and auth settings",
  },
  {
    group: "discovery.k8s.io",
    resource: "endpointslices",
    verbs: ["list", "watch"],
    scope: "cluster",
    why: "ready replicas of each model",
  },
];

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** RBAC rules for the calls of one scope: one rule per group and verb set, resources merged. */
export function rulesFor(calls: readonly ApiCall[], scope: ApiCall["scope"]): PolicyRule[] {
  const verbsByResource = new Map<string, Set<string>>();
  for (const call of calls) {
    if (call.scope !== scope) continue;
    const key = `${call.group}\u0000${call.resource}`;
    const verbs = verbsByResource.get(key) ?? new Set();
    for (const verb of call.verbs) verbs.add(verb);
    verbsByResource.set(key, verbs);
  }
  const rules = new Map<string, PolicyRule>();
  for (const [key, verbs] of verbsByResource) {
    if (verbs.size === 0) continue;
    const [group = "", resource = ""] = key.split("\u0000");
    const sorted = [...verbs].sort();
    const ruleKey = `${group}\u0000${sorted.join(",")}`;
    const rule = rules.get(ruleKey) ?? { apiGroups: [group], resources: [], verbs: sorted };
    rule.resources.push(resource);
    rules.set(ruleKey, rule);
  }
  return [...rules.values()];
}

export interface InstallOptions {
  namespace?: string;
  image?: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  operatorReplicas?: number;
  gatewayReplicas?: number;
  /**
   * A Secret in the install namespace with the gateway's API keys: mounted at API_KEYS_MOUNT and its
   * keys set as environment variables, for a ModelDeployment's `apiKeysFrom: file:…` or `env:…`.
   */
  apiKeysSecret?: string;
}

interface Component {
  name: string;
  component: "operator" | "gateway";
  calls: readonly ApiCall[];
}

const COMPONENTS: readonly Component[] = [
  { name: OPERATOR_NAME, component: "operator", calls: OPERATOR_API_CALLS },
  { name: GATEWAY_NAME, component: "gateway", calls: GATEWAY_API_CALLS },
];

/** Every object `berth install` applies, in apply order (the CRD and namespace first, Deployments last). */
export function installObjects(options: InstallOptions = {}): KubeObject[] {
  const namespace = options.namespace ?? INSTALL_NAMESPACE;
  const image = options.image ?? DEFAULT_IMAGE;
  const version = imageVersion(image);
  const labels = (component: string) => ({
    [LABEL_PART_OF]: "berth",
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_COMPONENT]: component,
    ...(version === undefined ? {} : { [LABEL_VERSION]: version }),
  });
  const crd = modelDeploymentCrd();
  crd.metadata.labels = labels("crd");
  const objects: KubeObject[] = [
    crd,
    { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels: labels("namespace") } },
  ];
  for (const { name, component, calls } of COMPONENTS) {
    const meta = { name, labels: labels(component) };
    const subject = { kind: "ServiceAccount", name, namespace };
    objects.push({ apiVersion: "v1", kind: "ServiceAccount", metadata: { ...meta, namespace } });
    const clusterRules = rulesFor(calls, "cluster");
    if (clusterRules.length > 0) {
      objects.push(
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRole",
          metadata: meta,
          rules: clusterRules,
        },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: meta,
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
          subjects: [subject],
        },
      );
    }
    const namespaceRules = rulesFor(calls, "install");
    if (namespaceRules.length > 0) {
      objects.push(
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "Role",
          metadata: { ...meta, namespace },
          rules: namespaceRules,
        },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { ...meta, namespace },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
          subjects: [subject],
        },
      );
    }
  }
  objects.push(gatewayService(namespace, labels("gateway")));
  objects.push(
    componentDeployment(namespace, labels("operator"), {
      name: OPERATOR_NAME,
      args: ["operator", "--health-port", String(OPERATOR_HEALTH_PORT)],
      replicas: options.operatorReplicas ?? 2,
      image,
      imagePullPolicy: options.imagePullPolicy ?? "IfNotPresent",
      // Ready once it leads with synced caches or stands by normally; alive while nothing failed fatally.
      http: { portName: "health", port: OPERATOR_HEALTH_PORT, readyPath: "/readyz" },
    }),
    componentDeployment(namespace, labels("gateway"), {
      name: GATEWAY_NAME,
      args: ["gateway", "--host", "0.0.0.0", "--port", String(GATEWAY_PORT), "--log-format", "json"],
      replicas: options.gatewayReplicas ?? 2,
      image,
      imagePullPolicy: options.imagePullPolicy ?? "IfNotPresent",
      // The gateway answers /healthz only after its first list of models and endpoints, so ready means synced.
      http: { portName: "http", port: GATEWAY_PORT, readyPath: "/healthz" },
      ...(options.apiKeysSecret === undefined ? {} : { apiKeysSecret: options.apiKeysSecret }),
    }),
  );
  return objects;
}

function gatewayService(namespace: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: GATEWAY_NAME, namespace, labels },
    spec: {
      type: "ClusterIP",
      selector: { [LABEL_NAME]: GATEWAY_NAME },
      ports: [{ name: "http", port: 80, targetPort: "http", protocol: "TCP" }],
    },
  };
}

interface DeploymentParts {
  name: string;
  args: string[];
  replicas: number;
  image: string;
  imagePullPolicy: string;
  /** The container's HTTP port (named), probed on readyPath for readiness and /healthz for liveness. */
  http: { portName: string; port: number; readyPath: string };
  apiKeysSecret?: string;
}

function componentDeployment(
  namespace: string,
  labels: Record<string, string>,
  parts: DeploymentParts,
): KubeObject {
  const selector = { [LABEL_NAME]: parts.name };
  const { portName, port, readyPath } = parts.http;
  const secret = parts.apiKeysSecret;
  // The kubelet mounts the Secret (no RBAC on Secrets for the ServiceAccount); fsGroup gives the
  // files (0440, root-owned otherwise) to the container's group, so the non-root user can read them.
  const apiKeys =
    secret === undefined
      ? undefined
      : {
          container: {
            envFrom: [{ secretRef: { name: secret, optional: false } }],
            volumeMounts: [{ name: "api-keys", mountPath: API_KEYS_MOUNT, readOnly: true }],
          },
          pod: {
            volumes: [
              { name: "api-keys", secret: { secretName: secret, optional: false, defaultMode: 0o440 } },
            ],
          },
        };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: parts.name, namespace, labels },
    spec: {
      replicas: parts.replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: { ...labels, ...selector } },
        spec: {
          serviceAccountName: parts.name,
          securityContext: {
            runAsNonRoot: true,
            ...(apiKeys ? { fsGroup: RUN_AS_USER } : {}),
            seccompProfile: { type: "RuntimeDefault" },
          },
          containers: [
            {
              name: parts.name.replace(/^berth-/, ""),
              image: parts.image,
              imagePullPolicy: parts.imagePullPolicy,
              command: ["berth"],
              args: parts.args,
              env: [
                { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
              ],
              resources: {
                requests: { cpu: "100m", memory: "128Mi" },
                limits: { memory: "512Mi" },
              },
              securityContext: containerSecurityContext(),
              ports: [{ name: portName, containerPort: port, protocol: "TCP" }],
              readinessProbe: { httpGet: { path: readyPath, port: portName }, periodSeconds: 5 },
              livenessProbe: {
                httpGet: { path: "/healthz", port: portName },
                periodSeconds: 10,
                failureThreshold: 6,
              },
              ...apiKeys?.container,
            },
          ],
          ...apiKeys?.pod,
        },
      },
    },
  };
}
