// Renders a ModelDeployment into the Kubernetes objects that run it: ServiceAccount, ConfigMap,
// Service, Deployment, HPA, PDB, NetworkPolicy, Ingress, ServiceMonitor. Pure: spec in, objects out.
//
// Objects are built as literals in a fixed key order, so the same spec always renders the same
// bytes (re-applying writes nothing) and the YAML reads in the order people expect.

import { createHash } from "node:crypto";
import type { IPrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { IMetricSpec } from "kubernetes-models/autoscaling/v2/MetricSpec";
import type { IIngress } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { IVolume } from "kubernetes-models/v1/Volume";
import { stringify } from "yaml";
import { berthAlerts, REPLICA_JOB, ruleGroups } from "../monitoring/alerts.js";
import { initialReplicas, type ModelDeployment, servedName } from "../spec/schema.js";
import { formatDuration, parseCpu } from "../spec/units.js";
import {
  type KubeObject,
  LABEL_COMPONENT,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  LABEL_PART_OF,
  LABEL_VERSION,
  MANAGED_BY,
} from "./objects.js";

export interface RenderOptions {
  /** Overrides spec.kubernetes.image (`berth render --image`). */
  image?: string;
  /** Overrides the spec's namespace (`--namespace`); without either, objects carry none. */
  namespace?: string;
}

/** Where the model file lives inside a replica. */
export const MODEL_MOUNT = "/models";
export const CONFIG_MOUNT = "/etc/berth";
export const CONFIG_FILE = "berth.yaml";
export const RUN_AS_USER = 10001;
/** Seconds a terminating pod keeps serving so Services and ingress controllers stop routing to it first. */
export const PRE_STOP_SECONDS = 5;
/** Seconds a replica gets after SIGTERM to finish the generations it admitted: `berth serve --grace-period`,
 * as long as its default request timeout, so an admitted request is never cut short by the rollout. */
export const DRAIN_SECONDS = 120;
/** Startup probe budget: a large model can take minutes to read and load. */
export const STARTUP_PROBE_PERIOD_SECONDS = 5;
export const STARTUP_PROBE_FAILURES = 180;
/** Ingress timeouts: a streamed completion holds its connection for as long as it generates. */
export const INGRESS_STREAM_TIMEOUT_SECONDS = 3600;
export const INGRESS_BODY_SIZE = "16m";
export const IN_FLIGHT_METRIC = "berth_requests_in_flight";
export const GPU_RESOURCE = "nvidia.com/gpu";
export const GPU_NODE_LABEL = "nvidia.com/gpu.present";

/** Every object of every deployment in the file, in apply order per deployment. */
export function renderAll(
  deployments: readonly ModelDeployment[],
  options: RenderOptions = {},
): KubeObject[] {
  return deployments.flatMap((deployment) => renderDeployment(deployment, options));
}

export function renderDeployment(deployment: ModelDeployment, options: RenderOptions = {}): KubeObject[] {
  const context = renderContext(deployment, options);
  const objects: KubeObject[] = [serviceAccount(context), configMap(context), service(context)];
  if (deployment.spec.model.cache?.size !== undefined) objects.push(modelCacheClaim(context));
  objects.push(workload(context));
  if (context.autoscaled) objects.push(horizontalPodAutoscaler(context));
  objects.push(podDisruptionBudget(context));
  if (deployment.spec.kubernetes.networkPolicy) objects.push(networkPolicy(context));
  if (deployment.spec.ingress) objects.push(ingress(context, deployment.spec.ingress));
  // The Prometheus operator's two kinds go together: scraping, and the alerts on what is scraped.
  if (deployment.spec.kubernetes.serviceMonitor)
    objects.push(serviceMonitor(context), prometheusRule(context));
  // Objects share label maps while being built; callers get independent trees (and YAML without aliases).
  // A JSON round trip, not structuredClone, which would keep the sharing.
  return JSON.parse(JSON.stringify(objects)) as KubeObject[];
}

/** The namespace objects go to: the flag, then the spec, then none (the kube context decides). */
export function namespaceOf(deployment: ModelDeployment, options: RenderOptions = {}): string | undefined {
  return options.namespace ?? deployment.spec.kubernetes.namespace ?? deployment.metadata.namespace;
}

/** Whether the spec asks for a HorizontalPodAutoscaler (and so the Deployment leaves replicas to it). */
export function isAutoscaled(deployment: ModelDeployment): boolean {
  const { replicas, autoscaling } = deployment.spec;
  return autoscaling.enabled && replicas.max > Math.max(1, replicas.min);
}

interface RenderContext {
  deployment: ModelDeployment;
  name: string;
  namespace: string | undefined;
  image: string;
  selectorLabels: Record<string, string>;
  labels: Record<string, string>;
  annotations: Record<string, string> | undefined;
  autoscaled: boolean;
}

function renderContext(deployment: ModelDeployment, options: RenderOptions): RenderContext {
  const name = deployment.metadata.name;
  const image = options.image ?? deployment.spec.kubernetes.image;
  const selectorLabels = { [LABEL_NAME]: name, [LABEL_INSTANCE]: name };
  const version = imageVersion(image);
  // The user's labels first, so they can add but never replace the labels Berth selects and prunes by.
  const labels: Record<string, string> = {
    ...deployment.metadata.labels,
    ...selectorLabels,
    [LABEL_COMPONENT]: "model-server",
    [LABEL_PART_OF]: "berth",
    [LABEL_MANAGED_BY]: MANAGED_BY,
    ...(version === undefined ? {} : { [LABEL_VERSION]: version }),
  };
  return {
    deployment,
    name,
    namespace: namespaceOf(deployment, options),
    image,
    selectorLabels,
    labels,
    annotations: deployment.metadata.annotations,
    autoscaled: isAutoscaled(deployment),
  };
}

function metadata(context: RenderContext): KubeObject["metadata"] {
  return {
    name: context.name,
    ...(context.namespace === undefined ? {} : { namespace: context.namespace }),
    labels: context.labels,
    ...(context.annotations === undefined ? {} : { annotations: context.annotations }),
  };
}

/** The image tag as a label value ("0.1.0"), when it is one; digests and odd tags get no label. */
export function imageVersion(image: string): string | undefined {
  const withoutDigest = image.split("@")[0] ?? image;
  const lastSegment = withoutDigest.slice(withoutDigest.lastIndexOf("/") + 1);
  const colon = lastSegment.lastIndexOf(":");
  if (colon < 0) return undefined;
  const tag = lastSegment.slice(colon + 1);
  return /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(tag) ? tag : undefined;
}

/** The model file's name under /models: the source's own `.gguf` name, or what `berth model pull` writes. */
export function modelFileName(source: string): string {
  const path = source.replace(/^[a-z]+:\/\//, "").split(/[?#]/)[0] ?? "";
  const last = path.slice(path.lastIndexOf("/") + 1);
  return /\.gguf$/i.test(last) ? last : "model.gguf";
}

/** CPU threads for the engine: the spec's, else the CPUs the replica is given (never the node's). */
export function engineThreads(deployment: ModelDeployment): number {
  const cpus = parseCpu(deployment.spec.resources.cpu) ?? 1;
  return deployment.spec.engine.threads ?? Math.max(1, Math.floor(cpus));
}

function serviceAccount(context: RenderContext): KubeObject {
  // The model server never calls the Kubernetes API: no token in its pods.
  const object: IServiceAccount = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: metadata(context),
    automountServiceAccountToken: false,
  };
  return object as KubeObject;
}

/** The spec as it would be written by hand (durations as text), so `berth` can load it back. */
export function specDocument(deployment: ModelDeployment): Record<string, unknown> {
  const { autoscaling } = deployment.spec;
  return {
    apiVersion: deployment.apiVersion,
    kind: deployment.kind,
    metadata: deployment.metadata,
    spec: {
      ...deployment.spec,
      autoscaling: {
        ...autoscaling,
        stableWindow: formatDuration(autoscaling.stableWindow),
        panicWindow: formatDuration(autoscaling.panicWindow),
        scaleDownDelay: formatDuration(autoscaling.scaleDownDelay),
        idleToZero: formatDuration(autoscaling.idleToZero),
      },
    },
  };
}

function configMap(context: RenderContext): KubeObject {
  const object: IConfigMap = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: metadata(context),
    data: { [CONFIG_FILE]: stringify(specDocument(context.deployment), { lineWidth: 0 }) },
  };
  return object as KubeObject;
}

function service(context: RenderContext): KubeObject {
  const { spec } = context.deployment;
  const object: IService = {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadata(context),
    spec: {
      type: spec.service.type,
      selector: context.selectorLabels,
      ports: [{ name: "http", protocol: "TCP", port: spec.service.port, targetPort: spec.port }],
    },
  };
  return object as KubeObject;
}

function serverContainer(context: RenderContext, modelPath: string): IContainer {
  const { spec } = context.deployment;
  const gpu = spec.resources.gpu;
  // Requests equal limits: the Guaranteed QoS class, so llama.cpp's threads get the CPUs they count on.
  const resources = { cpu: spec.resources.cpu, memory: spec.resources.memory };
  return {
    name: "server",
    image: context.image,
    imagePullPolicy: spec.kubernetes.imagePullPolicy,
    // A crash's last log lines become the termination message the operator reports.
    terminationMessagePolicy: "FallbackToLogsOnError",
    command: ["berth"],
    args: [
      "serve",
      "--model",
      modelPath,
      "--host",
      "0.0.0.0",
      "--port",
      String(spec.port),
      "--parallel",
      String(spec.engine.parallel),
      "--ctx",
      String(spec.model.contextSize),
      "--threads",
      String(engineThreads(context.deployment)),
      "--model-id",
      servedName(context.deployment),
      "--grace-period",
      `${DRAIN_SECONDS}s`,
      ...(spec.engine.maxQueue === undefined ? [] : ["--max-queue", String(spec.engine.maxQueue)]),
    ],
    env: [
      { name: "BERTH_HOME", value: "/tmp/berth" },
      // llama.cpp's CPU backend spins one OpenMP team per libuv pool thread; one thread keeps them from
      // fighting over the replica's cores (shared/notes/engine.md).
      { name: "UV_THREADPOOL_SIZE", value: "1" },
    ],
    ports: [{ name: "http", containerPort: spec.port, protocol: "TCP" }],
    resources: {
      requests: resources,
      limits: gpu > 0 ? { ...resources, [GPU_RESOURCE]: String(gpu) } : resources,
    },
    // /readyz answers 503 until the model is loaded: the startup probe waits that long before liveness
    // begins, so a slow load is never mistaken for a hung server.
    startupProbe: {
      httpGet: { path: "/readyz", port: "http" },
      periodSeconds: STARTUP_PROBE_PERIOD_SECONDS,
      timeoutSeconds: 3,
      failureThreshold: STARTUP_PROBE_FAILURES,
    },
    readinessProbe: {
      httpGet: { path: "/readyz", port: "http" },
      periodSeconds: 5,
      timeoutSeconds: 3,
      failureThreshold: 2,
    },
    livenessProbe: {
      httpGet: { path: "/healthz", port: "http" },
      periodSeconds: 10,
      timeoutSeconds: 5,
      failureThreshold: 3,
    },
    // Keep serving while endpoints are withdrawn; SIGTERM then stops admission and drains.
    lifecycle: { preStop: { sleep: { seconds: PRE_STOP_SECONDS } } },
    securityContext: containerSecurityContext(),
    volumeMounts: [
      { name: "model", mountPath: MODEL_MOUNT, readOnly: true },
      { name: "config", mountPath: CONFIG_MOUNT, readOnly: true },
      { name: "tmp", mountPath: "/tmp" },
    ],
  };
}

export function containerSecurityContext(): NonNullable<IContainer["securityContext"]> {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS_USER,
    runAsGroup: RUN_AS_USER,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/**
 * Where the server finds the model. In a shared cache claim each source has a folder of its own
 * (two deployments, or two versions during a rollout, never overwrite each other's file).
 */
export function modelPathIn(deployment: ModelDeployment): string {
  const { source, cache } = deployment.spec.model;
  if (cache === undefined) return `${MODEL_MOUNT}/${modelFileName(source)}`;
  const key = createHash("sha256").update(source).digest("hex").slice(0, 16);
  return `${MODEL_MOUNT}/sources/${key}/${modelFileName(source)}`;
}

/**
 * Pulls the model before the server starts: `berth model pull SOURCE --output PATH`, with the
 * store's caches (Berth's and the Hugging Face one) on the model volume, so a shared claim keeps
 * them across pods. Credentials only from the Secret the spec names, and only in this container.
 */
function modelFetchContainer(context: RenderContext, modelPath: string): IContainer {
  const { spec } = context.deployment;
  return {
    name: "fetch-model",
    image: context.image,
    imagePullPolicy: spec.kubernetes.imagePullPolicy,
    command: ["berth"],
    args: ["model", "pull", spec.model.source, "--output", modelPath],
    // A failed pull's last log lines become its termination message, which the operator puts in
    // the ModelDeployment's conditions and events (`kubectl describe` says why, no `kubectl logs`).
    terminationMessagePolicy: "FallbackToLogsOnError",
    env: [
      { name: "BERTH_HOME", value: `${MODEL_MOUNT}/.berth` },
      { name: "HF_HOME", value: `${MODEL_MOUNT}/.huggingface` },
    ],
    ...(spec.model.credentialsSecret === undefined
      ? {}
      : { envFrom: [{ secretRef: { name: spec.model.credentialsSecret } }] }),
    // The server's own requests: an init container's count toward the pod's footprint, so asking for
    // no more than the server keeps what the scheduler reserves equal to the spec's resources.
    resources: {
      requests: { cpu: spec.resources.cpu, memory: spec.resources.memory },
      limits: { cpu: spec.resources.cpu, memory: spec.resources.memory },
    },
    securityContext: containerSecurityContext(),
    volumeMounts: [
      { name: "model", mountPath: MODEL_MOUNT },
      { name: "tmp", mountPath: "/tmp" },
    ],
  };
}

/** The shared model cache claim, when the spec gives its size (otherwise it must already exist). */
function modelCacheClaim(context: RenderContext): KubeObject {
  const cache = context.deployment.spec.model.cache;
  const object: IPersistentVolumeClaim = {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { ...metadata(context), name: cache?.claimName ?? context.name },
    spec: {
      accessModes: [cache?.accessMode ?? "ReadWriteMany"],
      ...(cache?.storageClassName === undefined ? {} : { storageClassName: cache.storageClassName }),
      resources: { requests: { storage: cache?.size ?? "10Gi" } },
    },
  };
  return object as KubeObject;
}

function workload(context: RenderContext): KubeObject {
  const { spec } = context.deployment;
  const claim = spec.kubernetes.modelVolumeClaim;
  const cache = spec.model.cache;
  const modelPath = modelPathIn(context.deployment);
  const gpu = spec.resources.gpu > 0;
  // A claim that already holds the file: read-only, nothing to pull. A cache claim: the init
  // container writes it (the server's mount stays read-only). Otherwise a fresh emptyDir per pod.
  const modelVolume: IVolume =
    claim !== undefined
      ? { name: "model", persistentVolumeClaim: { claimName: claim, readOnly: true } }
      : cache !== undefined
        ? { name: "model", persistentVolumeClaim: { claimName: cache.claimName } }
        : { name: "model", emptyDir: {} };
  const object: IDeployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadata(context),
    spec: {
      // With an HPA the replica count is the HPA's: applying one here would undo its decisions.
      ...(context.autoscaled ? {} : { replicas: initialReplicas(spec) }),
      revisionHistoryLimit: 5,
      // Longer than the startup probe's budget, so a slow model load is not reported as a failed rollout.
      progressDeadlineSeconds: STARTUP_PROBE_PERIOD_SECONDS * STARTUP_PROBE_FAILURES + 300,
      selector: { matchLabels: context.selectorLabels },
      // Never below the current capacity during a rollout: a new replica must be ready before an old one goes.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: context.labels,
          annotations: {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": String(spec.port),
            "prometheus.io/path": "/metrics",
          },
        },
        spec: {
          serviceAccountName: context.name,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // The preStop pause, then the server's own drain (--grace-period), then a margin to exit.
          terminationGracePeriodSeconds: PRE_STOP_SECONDS + DRAIN_SECONDS + 10,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: RUN_AS_USER,
            runAsGroup: RUN_AS_USER,
            fsGroup: RUN_AS_USER,
            seccompProfile: { type: "RuntimeDefault" },
          },
          ...(gpu
            ? {
                nodeSelector: { [GPU_NODE_LABEL]: "true" },
                tolerations: [{ key: GPU_RESOURCE, operator: "Exists", effect: "NoSchedule" }],
              }
            : {}),
          // Spread replicas over nodes so one node's loss takes one replica; soft, so a small cluster still
          // schedules them all. pod-template-hash keeps a rollout's new pods from counting the old ones.
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "ScheduleAnyway",
              labelSelector: { matchLabels: context.selectorLabels },
              matchLabelKeys: ["pod-template-hash"],
            },
          ],
          ...(claim === undefined ? { initContainers: [modelFetchContainer(context, modelPath)] } : {}),
          containers: [serverContainer(context, modelPath)],
          volumes: [
            modelVolume,
            { name: "config", configMap: { name: context.name } },
            { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
          ],
        },
      },
    },
  };
  return object as KubeObject;
}

/**
 * Scales on requests in flight per replica (running + waiting), the signal the local autoscaler uses:
 * for LLM serving it rises the moment requests queue, while CPU saturates early on CPU models and says
 * nothing on GPU models. It is a Pods metric served by a custom metrics adapter (prometheus-adapter
 * with the rule in the Helm chart's README); without one the HPA reports FailedGetPodsMetric and keeps
 * the replica count, so `spec.kubernetes.autoscalingMetric: cpu` exists for clusters without an adapter.
 */
function horizontalPodAutoscaler(context: RenderContext): KubeObject {
  const { spec } = context.deployment;
  const metric: IMetricSpec =
    spec.kubernetes.autoscalingMetric === "inFlight"
      ? {
          type: "Pods",
          pods: {
            metric: { name: IN_FLIGHT_METRIC },
            target: { type: "AverageValue", averageValue: String(spec.autoscaling.targetInFlight) },
          },
        }
      : {
          type: "Resource",
          resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } },
        };
  const object: IHorizontalPodAutoscaler = {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: metadata(context),
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: context.name },
      // The HPA cannot scale to zero (alpha feature gate); replicas.min 0 is the Berth gateway's job.
      minReplicas: Math.max(1, spec.replicas.min),
      maxReplicas: spec.replicas.max,
      metrics: [metric],
      behavior: {
        scaleUp: {
          stabilizationWindowSeconds: 0,
          selectPolicy: "Max",
          policies: [
            { type: "Percent", value: 100, periodSeconds: 15 },
            { type: "Pods", value: 4, periodSeconds: 15 },
          ],
        },
        scaleDown: {
          stabilizationWindowSeconds: Math.min(3600, Math.ceil(spec.autoscaling.scaleDownDelay / 1000)),
          selectPolicy: "Max",
          policies: [{ type: "Pods", value: 1, periodSeconds: 60 }],
        },
      },
    },
  };
  return object as KubeObject;
}

function podDisruptionBudget(context: RenderContext): KubeObject {
  // maxUnavailable 1 (not minAvailable): a drain may always take one replica, even of a single-replica
  // model, instead of blocking node maintenance forever; pods that never became ready may always go.
  const object: IPodDisruptionBudget = {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: metadata(context),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: context.selectorLabels },
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    },
  };
  return object as KubeObject;
}

function networkPolicy(context: RenderContext): KubeObject {
  // Only the serving port is reachable (API, health, metrics share it), from anywhere: the ingress
  // controller and Prometheus live in namespaces Berth cannot know. Egress stays open for model pulls.
  const object: INetworkPolicy = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: metadata(context),
    spec: {
      podSelector: { matchLabels: context.selectorLabels },
      policyTypes: ["Ingress"],
      ingress: [{ ports: [{ protocol: "TCP", port: context.deployment.spec.port }] }],
    },
  };
  return object as KubeObject;
}

type IngressSpec = NonNullable<ModelDeployment["spec"]["ingress"]>;

function ingress(context: RenderContext, spec: IngressSpec): KubeObject {
  const timeout = String(INGRESS_STREAM_TIMEOUT_SECONDS);
  const object: IIngress = {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: {
      ...metadata(context),
      // ingress-nginx buffers responses by default, which holds back streamed tokens until the end.
      annotations: {
        ...context.annotations,
        "nginx.ingress.kubernetes.io/proxy-buffering": "off",
        "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
        "nginx.ingress.kubernetes.io/proxy-read-timeout": timeout,
        "nginx.ingress.kubernetes.io/proxy-send-timeout": timeout,
        "nginx.ingress.kubernetes.io/proxy-body-size": INGRESS_BODY_SIZE,
      },
    },
    spec: {
      ingressClassName: spec.className,
      ...(spec.tlsSecretName === undefined
        ? {}
        : { tls: [{ hosts: [spec.host], secretName: spec.tlsSecretName }] }),
      rules: [
        {
          host: spec.host,
          http: {
            paths: [
              {
                path: spec.path,
                pathType: "Prefix",
                backend: {
                  service: { name: context.name, port: { number: context.deployment.spec.service.port } },
                },
              },
            ],
          },
        },
      ],
    },
  };
  return object as KubeObject;
}

function serviceMonitor(context: RenderContext): KubeObject {
  const object: IServiceMonitor = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: metadata(context),
    spec: {
      selector: { matchLabels: context.selectorLabels },
      endpoints: [
        {
          port: "http",
          path: "/metrics",
          interval: "15s",
          // The labels Berth's dashboard and alerts select on, as `berth up --prometheus` sets them.
          relabelings: [
            { sourceLabels: ["__meta_kubernetes_pod_name"], targetLabel: "replica" },
            { targetLabel: "job", replacement: REPLICA_JOB },
          ],
        },
      ],
    },
  };
  // The CRD package types metadata loosely (no index signature); the literal above sets name and labels.
  return object as unknown as KubeObject;
}

/** Berth's alerts (src/monitoring/alerts.ts) for this deployment's model only. */
function prometheusRule(context: RenderContext): KubeObject {
  const model = servedName(context.deployment);
  const object: IPrometheusRule = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: metadata(context),
    spec: ruleGroups(berthAlerts(`model=${JSON.stringify(model)}`), `berth-${context.name}`),
  };
  return object as unknown as KubeObject;
}
