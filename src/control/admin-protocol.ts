// The local admin API between a running `berth up` and the day-two commands: JSON over HTTP on a
// Unix socket in the state directory (mode 0600 in a 0700 directory: only the same user reaches it).
import { join } from "node:path";
import { z } from "zod";

export const ADMIN_SOCKET_NAME = "up.sock";

export function adminSocketPath(stateDirectory: string): string {
  return join(stateDirectory, ADMIN_SOCKET_NAME);
}

const replicaStateSchema = z.enum([
  "starting",
  "ready",
  "unresponsive",
  "draining",
  "restarting",
  "crash-looping",
  "stopped",
]);

export const replicaStatusSchema = z.object({
  id: z.string(),
  generation: z.number(),
  state: replicaStateSchema,
  url: z.string().optional(),
  port: z.number().optional(),
  pid: z.number().optional(),
  inFlight: z.number(),
  restarts: z.number(),
  uptimeMs: z.number(),
  message: z.string().optional(),
  lastLogLines: z.array(z.string()).optional(),
});

export const autoscalerEventSchema = z.object({
  reason: z.string(),
  message: z.string(),
  inputs: z.record(z.string(), z.unknown()),
});

export const modelStatusSchema = z.object({
  name: z.string(),
  servedName: z.string(),
  generation: z.number(),
  desired: z.number(),
  ready: z.number(),
  actual: z.number(),
  min: z.number(),
  max: z.number(),
  manualFloor: z.number().optional(),
  autoscaling: z.object({
    enabled: z.boolean(),
    panicking: z.boolean(),
    lastDecision: autoscalerEventSchema.optional(),
  }),
  rollout: z.object({ toGeneration: z.number(), startedAt: z.number() }).optional(),
  inFlight: z.number(),
  /** False while no replica can become ready (crash loop, failed model): requests get 503 at once. */
  available: z.boolean().optional(),
  unavailableReason: z.string().optional(),
  /** The model could not be had (pull or model check failed): no replica runs. */
  failure: z.object({ code: z.string(), message: z.string() }).optional(),
  replicas: z.array(replicaStatusSchema),
});

export const upStatusSchema = z.object({
  pid: z.number(),
  startedAt: z.number(),
  gatewayUrl: z.string(),
  specFile: z.string(),
  runtime: z.string(),
  models: z.array(modelStatusSchema),
});
export type UpStatus = z.infer<typeof upStatusSchema>;

export const controllerEventSchema = z.object({
  seq: z.number(),
  at: z.number(),
  model: z.string(),
  type: z.string(),
  replica: z.string().optional(),
  message: z.string(),
  inputs: z.record(z.string(), z.unknown()).optional(),
});
export const eventsResponseSchema = z.object({ events: z.array(controllerEventSchema) });
export type ControllerEventView = z.infer<typeof controllerEventSchema>;

export const scaleRequestSchema = z.strictObject({
  model: z.string().min(1),
  /** A manual floor; null returns the model to its spec. */
  replicas: z.number().int().min(0).max(1000).nullable(),
});
export const scaleResponseSchema = z.object({ model: z.string(), manualFloor: z.number().nullable() });

export const applyRequestSchema = z.strictObject({
  /** Absolute path of the spec (relative model paths resolve from it; --watch keeps reading it). */
  file: z.string().min(1),
  text: z.string(),
});
export const applyResponseSchema = z.object({
  created: z.array(z.string()),
  updated: z.array(z.string()),
  unchanged: z.array(z.string()),
  removed: z.array(z.string()),
  /** Problems that did not stop the apply (e.g. a model's API keys could not be read). */
  warnings: z.array(z.string()).optional(),
  /** Models of this spec whose source could not be had or whose file the model check refused. */
  failed: z.array(z.object({ name: z.string(), code: z.string(), message: z.string() })).optional(),
});

export const downResponseSchema = z.object({ pid: z.number() });

/** One NDJSON line of GET /v1/logs. */
export const logLineSchema = z.object({ replicaId: z.string(), line: z.string() });

export const adminErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
export type ApplyResultView = z.infer<typeof applyResponseSchema>;
