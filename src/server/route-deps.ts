// What the route modules share, handed to them by buildServerApp: the lifecycle (engine, draining),
// the metrics, the resolved limits, and the per-request inference context.

import type { FastifyRequest } from "fastify";
import type { Engine } from "../engine/types.js";
import type { ServerLifecycle } from "./lifecycle.js";
import type { ServerMetrics } from "./metrics.js";
import type { InferenceContext } from "./request-context.js";

export interface ResolvedServerLimits {
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  retryAfterSeconds: number;
  logPrompts: boolean;
  /** /generate's max_length when the request has none (the seed app's default, 50, prompt included). */
  defaultMaxLength: number;
  /** /v1/completions' max_tokens when the request has none (OpenAI's default, 16). */
  defaultCompletionMaxTokens: number;
}

export interface RouteDeps {
  readonly lifecycle: ServerLifecycle;
  readonly metrics: ServerMetrics;
  readonly limits: ResolvedServerLimits;
  /** Unix seconds the model became available (/v1/models `created`). */
  modelCreated(): number;
  /** The engine, or a 503 (loading / draining) HttpError thrown. */
  readyEngine(): Engine;
  /** The inference context created for this request by the app's onRequest hook. */
  contextOf(request: FastifyRequest): InferenceContext;
}
