// The model server's HTTP app (fastify): request ids, admission (loading, draining, deadlines,
// body limits), the one error handler, per-request logs and metrics, and the routes.

import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import type { Engine } from "../engine/types.js";
import { createLogger, type Logger } from "../util/log.js";
import { traceContextFor, traceLogFields } from "../util/trace.js";
import { parseJsonBody } from "./body-parsers.js";
import {
  allowedMethods,
  bodyTooLargeMessage,
  deadlineMessage,
  errorBody,
  HttpError,
  methodNotAllowedMessage,
  toHttpError,
} from "./errors.js";
import { registerGenerateRoute } from "./generate-route.js";
import { ServerLifecycle } from "./lifecycle.js";
import { unsupportedMediaTypeMessage } from "./media-types.js";
import { createServerMetrics, type ServerMetrics } from "./metrics.js";
import { registerOpenAiRoutes } from "./openai-routes.js";
import { type InferenceContext, requestIdFrom } from "./request-context.js";
import type { ResolvedServerLimits, RouteDeps } from "./route-deps.js";
import { timeoutHeaderSchema } from "./schemas.js";

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
export const REQUEST_TIMEOUT_HEADER = "x-berth-timeout-ms";

export interface ServerAppOptions {
  /** A loaded engine (the app is ready at once), or omit it and pass a lifecycle that gets one later. */
  engine?: Engine;
  lifecycle?: ServerLifecycle;
  logger?: Logger;
  metrics?: ServerMetrics;
  /** Largest request body, bytes (413 beyond). Default 1 MiB. */
  bodyLimitBytes?: number;
  /** Default per-request deadline, ms (504 beyond); a request may set its own with x-berth-timeout-ms. Default 120 s. */
  requestTimeoutMs?: number;
  /** Retry-After seconds on 429 and 503. Default 1. */
  retryAfterSeconds?: number;
  /** Log prompts and completions (off by default: they are user data). */
  logPrompts?: boolean;
}

const INFERENCE_ROUTES = new Set(["/generate", "/v1/completions", "/v1/chat/completions"]);
// Routes that need the model; probes and metrics answer in every state.
const MODEL_ROUTES = new Set([...INFERENCE_ROUTES, "/v1/models"]);

export async function buildServerApp(options: ServerAppOptions = {}): Promise<FastifyInstance> {
  const lifecycle = options.lifecycle ?? new ServerLifecycle(options.engine);
  if (options.engine && lifecycle.engine !== options.engine) lifecycle.setEngine(options.engine);
  const logger = options.logger ?? createLogger();
  const metrics = options.metrics ?? createServerMetrics();
  const limits: ResolvedServerLimits = {
    bodyLimitBytes: options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    retryAfterSeconds: options.retryAfterSeconds ?? 1,
    logPrompts: options.logPrompts ?? false,
    // The seed's Flask app read max_length with a default of 50 (prompt included): its clients
    // expect that much text, not Hugging Face generate()'s own default of 20.
    defaultMaxLength: 50,
    defaultCompletionMaxTokens: 16,
  };
  const contexts = new WeakMap<FastifyRequest, InferenceContext>();
  let modelCreated = Math.floor(Date.now() / 1000);
  lifecycle.onEngine((engine) => {
    modelCreated = Math.floor(Date.now() / 1000);
    metrics.observeEngine(engine);
  });

  const app = Fastify({
    loggerInstance: logger,
    // One line per request is written below, with the model, tokens and durations.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.bodyLimitBytes,
    genReqId: (raw) => requestIdFrom(raw.headers["x-request-id"], randomUUID),
    // Draining is answered by the app itself (503 BERTH_DRAINING in OpenAI's shape).
    return503OnClosing: false,
    // A URL Fastify cannot decode (a bad percent-escape) is refused before any route or hook runs:
    // still in OpenAI's shape (found by test/fuzz/http.fuzz.test.ts).
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      void reply.code(400).send(errorBody(new HttpError("BERTH_INVALID_REQUEST", error.message)));
    },
  }) as unknown as FastifyInstance;

  const readyEngine = (): Engine => {
    if (lifecycle.state === "draining") {
      throw new HttpError("BERTH_DRAINING", "the server is shutting down", {
        retryAfterSeconds: limits.retryAfterSeconds,
      });
    }
    const engine = lifecycle.engine;
    if (!engine) {
      throw new HttpError("BERTH_NOT_READY", "the model is still loading", {
        retryAfterSeconds: limits.retryAfterSeconds,
      });
    }
    return engine;
  };

  const deps: RouteDeps = {
    lifecycle,
    metrics,
    limits,
    modelCreated: () => modelCreated,
    readyEngine,
    contextOf(request) {
      const context = contexts.get(request);
      if (!context) throw new Error(`no inference context for ${request.routeOptions.url}`);
      return context;
    },
  };

  // Only JSON at the top level: text/plain and unknown types get 415 (the form parsers live in
  // /generate's scope). UTF-8 is checked before JSON.parse so bad bytes are refused, not replaced.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  const finish = (
    request: FastifyRequest,
    reply: FastifyReply,
    context: InferenceContext,
    responded: boolean,
  ): void => {
    const model = lifecycle.engine?.info.id ?? "unknown";
    const status = context.outcome?.status ?? (responded ? reply.statusCode : 499);
    const seconds = (performance.now() - context.startedAt) / 1000;
    metrics.requestsTotal.inc({ model, route: context.route, code: String(status) });
    metrics.requestDuration.observe({ model, route: context.route }, seconds);
    const line: Record<string, unknown> = {
      model,
      route: context.route,
      status,
      durationMs: Math.round(seconds * 1000),
      stream: context.stream ?? false,
      promptTokens: context.promptTokens,
      completionTokens: context.completionTokens,
      cachedPromptTokens: context.cachedPromptTokens,
      finishReason: context.finishReason,
      ttftMs:
        context.timeToFirstTokenSeconds === undefined
          ? undefined
          : Math.round(context.timeToFirstTokenSeconds * 1000),
    };
    if (context.outcome) line.code = context.outcome.code;
    if (limits.logPrompts) {
      line.prompt = context.prompt;
      line.completion = context.completion;
    }
    request.log.info(line, "request completed");
  };

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    // The gateway's trace (traceparent) continues here with a span of this replica's: every log
    // line of the request carries the trace id and the request id the gateway logged.
    request.log = request.log.child(traceLogFields(traceContextFor(request.headers.traceparent)));
    const route = request.routeOptions.url;
    if (route === undefined || !MODEL_ROUTES.has(route)) return;
    if (!INFERENCE_ROUTES.has(route)) {
      readyEngine();
      return;
    }
    const timeoutHeader = request.headers[REQUEST_TIMEOUT_HEADER];
    const parsedTimeout =
      timeoutHeader === undefined ? undefined : timeoutHeaderSchema.safeParse(timeoutHeader);
    const context: InferenceContext = {
      route,
      startedAt: performance.now(),
      controller: new AbortController(),
      deadlineMs: parsedTimeout?.success ? parsedTimeout.data : limits.requestTimeoutMs,
    };
    contexts.set(request, context);
    const release = lifecycle.track(context.controller);
    const deadline = setTimeout(() => {
      context.controller.abort(new HttpError("BERTH_DEADLINE_EXCEEDED", deadlineMessage(context.deadlineMs)));
    }, context.deadlineMs);
    let responded = false;
    reply.raw.once("finish", () => {
      responded = true;
    });
    reply.raw.once("close", () => {
      clearTimeout(deadline);
      // A response closed before it finished: the client went away. Cancel its generation now.
      if (!responded && !context.controller.signal.aborted) {
        context.controller.abort(
          new HttpError("BERTH_CLIENT_CLOSED_REQUEST", "the client closed the connection"),
        );
      }
      release();
      finish(request, reply, context, responded);
    });

    if (parsedTimeout && !parsedTimeout.success) {
      throw new HttpError(
        "BERTH_INVALID_REQUEST",
        `${REQUEST_TIMEOUT_HEADER} must be an integer number of milliseconds in 1..3600000`,
        { param: REQUEST_TIMEOUT_HEADER },
      );
    }
    // @fastify/multipart reads its body outside fastify's bodyLimit: refuse a declared oversize body here.
    const declaredLength = Number(request.headers["content-length"]);
    if (Number.isFinite(declaredLength) && declaredLength > limits.bodyLimitBytes) {
      throw new HttpError("BERTH_BODY_TOO_LARGE", bodyTooLargeMessage(declaredLength, limits.bodyLimitBytes));
    }
    readyEngine();
  });

  app.addHook("onSend", async (request, reply) => {
    // Fastify answers a few failures (a malformed URL) without running onRequest.
    if (!reply.hasHeader("x-request-id")) reply.header("x-request-id", request.id);
    if (lifecycle.state === "draining") reply.header("connection", "close");
  });

  app.setErrorHandler((error, request, reply) => {
    let httpError = toHttpError(error);
    const route = request.routeOptions.url;
    if (httpError.code === "BERTH_UNSUPPORTED_MEDIA_TYPE" && route !== undefined) {
      // Fastify says only "Unsupported Media Type": name what was sent and what the route takes.
      httpError = new HttpError(
        "BERTH_UNSUPPORTED_MEDIA_TYPE",
        unsupportedMediaTypeMessage(route, request.headers["content-type"]),
        { cause: error },
      );
    }
    const context = contexts.get(request);
    if (context) context.outcome = httpError;
    if (
      httpError.status >= 500 &&
      httpError.code !== "BERTH_DRAINING" &&
      httpError.code !== "BERTH_NOT_READY"
    ) {
      request.log.error({ err: error, code: httpError.code }, "request failed");
    }
    const retryAfter =
      httpError.retryAfterSeconds ??
      (httpError.status === 429 || httpError.status === 503 ? limits.retryAfterSeconds : undefined);
    if (retryAfter !== undefined) reply.header("retry-after", String(retryAfter));
    return reply.code(httpError.status).send(errorBody(httpError));
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    const allowed = allowedMethods(app, path);
    if (allowed.length > 0) {
      reply.header("allow", allowed.join(", "));
      throw new HttpError("BERTH_METHOD_NOT_ALLOWED", methodNotAllowedMessage(request.method, path, allowed));
    }
    throw new HttpError("BERTH_ROUTE_NOT_FOUND", `no route ${request.method} ${request.url.slice(0, 200)}`);
  });

  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async () => {
    const engine = readyEngine();
    return { status: "ready", model: engine.info.id };
  });

  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  registerOpenAiRoutes(app, deps);
  await registerGenerateRoute(app, deps);
  return app;
}
