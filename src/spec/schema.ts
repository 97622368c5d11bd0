// The ModelDeployment schema (zod): the one spec file that drives `berth up`, `berth render` and
// `berth deploy`. Parsing applies defaults, so everything downstream sees a complete object.
import { z } from "zod";
import { parseModelSource } from "../models/sources.js";
import { parseDuration } from "./units.js";

export const API_VERSION = "berth.dev/v1alpha1";
export const KIND = "ModelDeployment";

/** DNS-1123 label: what Kubernetes accepts as an object name, and what we use as a model id. */
const dnsLabel = z
  .string()
  .min(1)
  .max(53, "must be at most 53 characters (it prefixes Kubernetes object names)")
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    "must be lowercase letters, digits and '-', starting and ending alphanumeric",
  );

const duration = z
  .string()
  .refine((value) => parseDuration(value) !== undefined, "must be a duration like 500ms, 30s, 10m or 1h")
  .transform((value) => parseDuration(value) as number);

const cpuQuantity = z
  .union([z.string(), z.number()])
  .transform(String)
  .refine((value) => /^(\d+(\.\d+)?|\d+m)$/.test(value), "must be a CPU quantity like 2, 0.5 or 500m");

const memoryQuantity = z
  .string()
  .regex(/^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$/, "must be a memory quantity like 512Mi or 4Gi");

/**
 * Where the weights come from: hf://ORG/REPO[/FILE][:QUANT][@REV], https://URL[#sha256=HEX],
 * s3://BUCKET/KEY, file://PATH or a path, tiny://SHAPE (generated test models). Parsed by the model
 * store's own parser, so the spec refuses exactly what `berth model pull` refuses, naming the part.
 */
const modelSource = z.string().superRefine((value, ctx) => {
  try {
    parseModelSource(value);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: error instanceof Error ? error.message : String(error) });
  }
});

/** A DNS-1123 subdomain: what Kubernetes accepts as a Secret or PersistentVolumeClaim name. */
const kubeObjectName = z
  .string()
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    "must be a Kubernetes object name (lowercase, digits, '-', '.')",
  );

/**
 * Kubernetes: pull the model into a PersistentVolumeClaim that every replica shares (downloaded
 * once, kept across restarts and rollouts) instead of a fresh emptyDir per pod.
 */
const modelCacheSchema = z.strictObject({
  claimName: kubeObjectName,
  /** When given, Berth renders the claim with this size; without it the claim must exist. */
  size: z
    .string()
    .regex(/^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$/, "must be a storage quantity like 20Gi")
    .optional(),
  storageClassName: z.string().min(1).optional(),
  /** ReadWriteMany lets replicas on several nodes share it; ReadWriteOnce keeps them on one node. */
  accessMode: z.enum(["ReadWriteMany", "ReadWriteOnce"]).default("ReadWriteMany"),
});

const modelSchema = z.strictObject({
  source: modelSource,
  /** Kubernetes: a PVC cache shared by replicas (default: an emptyDir per pod). */
  cache: modelCacheSchema.optional(),
  /**
   * Kubernetes: a Secret whose keys the model pull gets as environment variables: HF_TOKEN for
   * private or gated hub repos, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT_URL / ...
   * for s3://. Only the pull (init container) sees them; never a token in the manifest.
   */
  credentialsSecret: kubeObjectName.optional(),
  /** Tokens of context per sequence (per request). */
  contextSize: z.number().int().min(64).max(1_048_576).default(1024),
  /** The name clients send in the `model` field; defaults to metadata.name. */
  servedName: z.string().min(1).max(256).optional(),
});

const engineSchema = z.strictObject({
  kind: z.literal("llamacpp").default("llamacpp"),
  /** Sequences batched together per replica. */
  parallel: z.number().int().min(1).max(256).default(8),
  /** CPU threads per replica; default: the replica's CPU count. */
  threads: z.number().int().min(1).max(512).optional(),
  /** Requests admitted to wait for a slot per replica, beyond which the replica answers 429. */
  maxQueue: z.number().int().min(0).max(100_000).optional(),
});

const replicasSchema = z.strictObject({
  min: z.number().int().min(0).max(1000).default(1),
  max: z.number().int().min(1).max(1000).default(1),
  /**
   * Replicas started before the autoscaler has seen any load (Knative's initial-scale, a
   * Deployment's `replicas` beside an HPA). Default: min, or 1 when min is 0.
   */
  initial: z.number().int().min(0).max(1000).optional(),
  /**
   * Replicas asked for by `kubectl scale`, an HPA or `berth scale` (the CRD's scale subresource
   * writes it). With autoscaling on it is a floor for Berth's autoscaler (like local `berth scale N`);
   * without it, the exact count.
   */
  desired: z.number().int().min(0).max(1000).optional(),
});

const autoscalingSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Desired in-flight requests per replica (running + waiting). */
  targetInFlight: z.number().positive().max(10_000).default(6),
  /** Averaging window for normal decisions (Knative's stable window). */
  stableWindow: duration.default(60_000),
  /** Short window used while load is far above capacity (Knative's panic window). */
  panicWindow: duration.default(6_000),
  /** Enter panic mode when the short-window demand reaches this multiple of current capacity. */
  panicThreshold: z.number().min(1).max(100).default(2),
  /** How long the desired count must stay lower before replicas are removed. */
  scaleDownDelay: duration.default(30_000),
  /** With replicas.min 0: idle time after which the model scales to zero. */
  idleToZero: duration.default(600_000),
});

const resourcesSchema = z.strictObject({
  cpu: cpuQuantity.default("2"),
  memory: memoryQuantity.default("4Gi"),
  gpu: z.number().int().min(0).max(64).default(0),
});

const serviceSchema = z.strictObject({
  type: z.enum(["ClusterIP", "NodePort", "LoadBalancer"]).default("ClusterIP"),
  port: z.number().int().min(1).max(65535).default(80),
});

const ingressSchema = z.strictObject({
  host: z
    .string()
    .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS host name"),
  className: z.string().min(1).default("nginx"),
  path: z.string().startsWith("/").default("/"),
  tlsSecretName: z.string().min(1).optional(),
});

const keySource = z
  .string()
  .regex(/^(env|file):.+$/, "must be env:VARIABLE or file:PATH (keys are never written in the spec)");

const authSchema = z.strictObject({
  /** Default: on when the gateway listens beyond loopback. */
  enabled: z.boolean().optional(),
  apiKeysFrom: keySource.optional(),
  /** The gateway's /metrics asks for an API key too (it names models and replicas). Default false. */
  protectMetrics: z.boolean().default(false),
});

const rateLimitSchema = z.strictObject({
  requestsPerMinute: z.number().int().min(1).max(10_000_000).optional(),
  tokensPerMinute: z.number().int().min(1).max(1_000_000_000).optional(),
});

const routingSchema = z.strictObject({
  /** least-load: least outstanding requests, power of two choices; prefix-hash: KV-cache affinity. */
  strategy: z.enum(["least-load", "prefix-hash", "round-robin"]).default("least-load"),
  /** Leading prompt characters hashed by prefix-hash. */
  prefixLength: z.number().int().min(1).max(100_000).default(256),
  /** Bounded-load factor for prefix-hash (KubeAI's default is 1.25). */
  loadFactor: z.number().min(1).max(10).default(1.25),
});

const kubernetesSchema = z.strictObject({
  /** Container image of the model server (what `berth build` produced). */
  image: z.string().min(1).default("ghcr.io/berth-dev/berth:0.1.0"),
  imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
  namespace: z.string().optional(),
  /** Existing PVC holding the model file; otherwise an init container fetches it. */
  modelVolumeClaim: z.string().optional(),
  serviceMonitor: z.boolean().default(false),
  networkPolicy: z.boolean().default(true),
  /**
   * What the HorizontalPodAutoscaler scales on. inFlight: the pods metric berth_requests_in_flight
   * (running + waiting, the signal the local autoscaler uses; needs a custom metrics adapter such as
   * prometheus-adapter). cpu: average CPU utilisation of the requests (works on any cluster, but lags
   * for GPU models and queued requests).
   */
  autoscalingMetric: z.enum(["inFlight", "cpu"]).default("inFlight"),
});

export const modelDeploymentSpecSchema = z
  .strictObject({
    model: modelSchema,
    engine: engineSchema.prefault({}),
    /** Port the model server listens on inside a replica (the seed used 9000). */
    port: z.number().int().min(1).max(65535).default(9000),
    replicas: replicasSchema.prefault({}),
    autoscaling: autoscalingSchema.prefault({}),
    resources: resourcesSchema.prefault({}),
    service: serviceSchema.prefault({}),
    ingress: ingressSchema.optional(),
    auth: authSchema.prefault({}),
    rateLimit: rateLimitSchema.prefault({}),
    routing: routingSchema.prefault({}),
    kubernetes: kubernetesSchema.prefault({}),
  })
  .superRefine((spec, ctx) => {
    if (spec.replicas.max < spec.replicas.min) {
      ctx.addIssue({
        code: "custom",
        path: ["replicas", "max"],
        message: `must be ≥ spec.replicas.min (${spec.replicas.min})`,
      });
    }
    for (const field of ["initial", "desired"] as const) {
      const count = spec.replicas[field];
      if (count !== undefined && (count < spec.replicas.min || count > spec.replicas.max)) {
        ctx.addIssue({
          code: "custom",
          path: ["replicas", field],
          message: `must be between spec.replicas.min (${spec.replicas.min}) and spec.replicas.max (${spec.replicas.max})`,
        });
      }
    }
    if (spec.model.cache !== undefined && spec.kubernetes.modelVolumeClaim !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["model", "cache"],
        message:
          "give either spec.model.cache (Berth pulls into a shared claim) or spec.kubernetes.modelVolumeClaim (a claim that already holds the file), not both",
      });
    }
    if (spec.autoscaling.panicWindow > spec.autoscaling.stableWindow) {
      ctx.addIssue({
        code: "custom",
        path: ["autoscaling", "panicWindow"],
        message: "must not be longer than spec.autoscaling.stableWindow",
      });
    }
  });

export const modelDeploymentSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION, { error: `must be ${API_VERSION}` }),
  kind: z.literal(KIND, { error: `must be ${KIND}` }),
  metadata: z.strictObject({
    name: dnsLabel,
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: modelDeploymentSpecSchema,
});

export type ModelDeployment = z.output<typeof modelDeploymentSchema>;
export type ModelDeploymentInput = z.input<typeof modelDeploymentSchema>;
export type ModelDeploymentSpec = ModelDeployment["spec"];

/** Replicas to run before any load is seen: replicas.desired, else initial, else min, else 1 (min 0). */
export function initialReplicas(spec: Pick<ModelDeploymentSpec, "replicas">): number {
  return (
    spec.replicas.desired ??
    spec.replicas.initial ??
    Math.min(spec.replicas.max, Math.max(spec.replicas.min, 1))
  );
}

/** The name clients use in the `model` field. */
export function servedName(deployment: ModelDeployment): string {
  return deployment.spec.model.servedName ?? deployment.metadata.name;
}
