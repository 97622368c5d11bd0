// The gateway: one fastify app that serves the replicas' API for every model, routing by the
// `model` field; wires auth, rate limits, hold, balancer and proxy, and reports load (LoadSource).
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import { registerDashboard } from "../dashboard/routes.js";
import { DEFAULT_BODY_LIMIT_BYTES } from "../server/app.js";
import { parseJsonBody } from "../server/body-parsers.js";
import {
  allowedMethods,
  bodyTooLargeMessage,
  deadlineMessage,
  methodNotAllowedMessage,
} from "../server/errors.js";
import { acceptsMediaType, mediaTypeOf, unsupportedMediaTypeMessage } from "../server/media-types.js";
import type { Logger } from "../util/log.js";
import { formatTraceparent, traceContextFor, traceLogFields } from "../util/trace.js";
import { bearerToken, defaultKeySourceContext, type KeySourceContext } from "./auth.js";
import { trackConnections } from "./connections.js";
import { type ConsoleSource, registerConsoleApi } from "./console.js";
import type { UpstreamDirectory } from "./directory.js";
import { errorBody, errorHeaders, GatewayError } from "./errors.js";
import { DEFAULT_HISTORY_OPTIONS, GatewayHistory, type HistoryOptions } from "./history.js";
import { HistorySampler } from "./history-sampler.js";
import { DEFAULT_HOLD_OPTIONS, type HoldOptions, ReadyWaiter } from "./hold.js";
import { inspectFormBody, inspectJsonBody, opaqueBody, type RequestSummary } from "./inspect.js";
import { LoadTracker } from "./load.js";
import { GatewayMetrics } from "./metrics.js";
import { OutlierDetector, type OutlierOptions } from "./outlier.js";
import { type ModelPolicy, PolicyCache } from "./policy.js";
import { DEFAULT_POOL_OPTIONS, type PoolOptions, UpstreamPools } from "./pools.js";
import { LivenessProbe } from "./probe.js";
import {
  ClientClosedError,
  DEFAULT_PROXY_OPTIONS,
  type ProxyOptions,
  type ProxyOutcome,
  UpstreamProxy,
} from "./proxy.js";
import { estimateTokens, RateLimiter, usageTokens } from "./ratelimit.js";
import { buildStatus } from "./status.js";

export interface GatewayOptions {
  directory: UpstreamDirectory;
  logger: Logger;
  /** Where the gateway will listen; auth is on by default beyond loopback. Default 127.0.0.1. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Per-request deadline (a client may ask for less with `x-berth-timeout-ms`). Default 10 min. */
  requestTimeoutMs?: number;
  /** Largest request body accepted (413 beyond). Default: the replicas' own limit (1 MiB), so both answer alike. */
  bodyLimitBytes?: number;
  proxy?: Partial<ProxyOptions>;
  hold?: Partial<HoldOptions>;
  outlier?: Partial<OutlierOptions>;
  pool?: Partial<PoolOptions>;
  /** Timeout of the /healthz probe that decides a waiting replica hangs. Default 2 s. */
  probeTimeoutMs?: number;
  /** On close, requests in flight get this long to finish before their connections are cut. Default 30 s. */
  shutdownGraceMs?: number;
  /** On close, a client connection idle this long is closed (see ./connections.ts). Default 1 s. */
  idleLingerMs?: number;
  /** Serve the dashboard at GET / (default true). */
  dashboard?: boolean;
  /** Keep a short history of load per model for the console's charts (sampled while listening). Default off. */
  history?: Partial<HistoryOptions>;
  /** Events, logs and desired replicas for the console, from a controller (berth up). */
  console?: ConsoleSource;
  /**
   * least-load compares this many random replicas: 2 is power of two choices, a number ≥ the
   * replicas is the exact least-loaded one. Default: all of them up to 8 replicas, else 2.
   */
  leastLoadChoices?: number;
  random?: () => number;
  now?: () => number;
  keySources?: KeySourceContext;
}

export interface Gateway {
  app: FastifyInstance;
  /** Load per model for the autoscaler (sample it; it is cheap). */
  load: LoadTracker;
  metrics: GatewayMetrics;
  /** Starts listening on host:port; resolves the base URL ("http://127.0.0.1:8080"). */
  listen(): Promise<string>;
  /** Re-reads every model's auth settings (after a spec change); throws GatewayConfigError. */
  checkConfig(): Promise<void>;
  /** Stops accepting, lets requests in flight finish, releases held ones with 503, closes pools. */
  close(): Promise<void>;
}

type Route = "/v1/completions" | "/v1/chat/completions" | "/generate";
const PROXIED_ROUTES: readonly Route[] = ["/v1/completions", "/v1/chat/completions", "/generate"];
const REQUEST_ID = /^[\w.:-]{1,128}$/;

export async function buildGateway(options: GatewayOptions): Promise<Gateway> {
  const { directory, logger } = options;
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? 8080;
  const now = options.now ?? Date.now;
  const requestTimeoutMs = options.requestTimeoutMs ?? 600_000;
  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const policies = new PolicyCache(directory, host, options.keySources ?? defaultKeySourceContext);
  // Refuse to start with a model whose auth is on but has no key (a GatewayConfigError).
  await policies.checkAll();

  const load = new LoadTracker(now);
  const metrics = new GatewayMetrics(directory, load);
  const outliers = new OutlierDetector({
    baseEjectionMs: 10_000,
    maxEjectionMs: 300_000,
    ...options.outlier,
  });
  const pools = new UpstreamPools({ ...DEFAULT_POOL_OPTIONS, ...options.pool });
  const probe = new LivenessProbe(options.probeTimeoutMs ?? 2_000);
  const waiter = new ReadyWaiter(
    directory,
    { ...DEFAULT_HOLD_OPTIONS, ...options.hold },
    { onHoldStart: (model) => load.holdStarted(model), onHoldEnd: (model) => load.holdFinished(model) },
  );
  const limiter = new RateLimiter(now);
  const proxy = new UpstreamProxy({
    directory,
    pools,
    outliers,
    load,
    waiter,
    probe,
    metrics,
    options: { ...DEFAULT_PROXY_OPTIONS, ...options.proxy },
    random: options.random ?? Math.random,
    ...(options.leastLoadChoices === undefined ? {} : { leastLoadChoices: options.leastLoadChoices }),
    now,
    onEvent: (event) => {
      if (event.type === "ejected") {
        logger.warn(
          { reqId: event.requestId, model: event.model, replica: event.upstream, reason: event.reason },
          `replica ${event.upstream} taken out of rotation for ${Math.round((event.until - now()) / 1000)} s (${event.reason})`,
        );
      } else {
        logger.info(
          { reqId: event.requestId, model: event.model, replica: event.upstream, reason: event.reason },
          `retrying on another replica: ${event.message}`,
        );
      }
    },
  });
  // Replicas that left the directory: close their connections, forget their ejections.
  const unsubscribe = directory.onChange(() => {
    const upstreams = directory.models().flatMap((model) => directory.upstreams(model));
    pools.retainOnly(upstreams.map((upstream) => upstream.url));
    outliers.retainOnly(new Set(upstreams.map((upstream) => upstream.id)));
  });
  let closing = false;

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // Requests that arrive while closing (keep-alive, pipelined) get our 503 below, not Fastify's.
    return503OnClosing: false,
    // A URL Fastify cannot decode is refused before any route or hook: in OpenAI's shape, as the replica.
    frameworkErrors: (error, _request, reply: FastifyReply) => {
      void reply.code(400).send(errorBody(new GatewayError("BERTH_INVALID_REQUEST", error.message)));
    },
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers["x-request-id"];
      return typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    // close() drains connections itself (./connections.ts); by the time Fastify closes, none is left
    // but those the grace period cuts.
    forceCloseConnections: false,
  });
  const connections = trackConnections(app.server);

  // Bodies stay bytes: the proxy forwards them untouched and reads only the fields it needs.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));

  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    if (closing) {
      reply.header("connection", "close");
      return done(draining());
    }
    // A body declared too large is refused before it is read, in the replica's words.
    const route = request.routeOptions.url;
    const declaredLength = Number(request.headers["content-length"]);
    if (
      route !== undefined &&
      (PROXIED_ROUTES as readonly string[]).includes(route) &&
      Number.isFinite(declaredLength) &&
      declaredLength > bodyLimit
    ) {
      return done(new GatewayError("BERTH_BODY_TOO_LARGE", bodyTooLargeMessage(declaredLength, bodyLimit)));
    }
    done();
  });

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    const gatewayError =
      error instanceof GatewayError
        ? error
        : error.code === "FST_ERR_CTP_BODY_TOO_LARGE"
          ? new GatewayError("BERTH_BODY_TOO_LARGE", error.message)
          : error.statusCode !== undefined && error.statusCode < 500
            ? new GatewayError("BERTH_INVALID_REQUEST", error.message)
            : new GatewayError("BERTH_INTERNAL", "internal gateway error");
    if (gatewayError.status >= 500) request.log.error({ err: error, reqId: request.id }, "gateway error");
    reply.code(gatewayError.status).headers(errorHeaders(gatewayError)).send(errorBody(gatewayError));
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    const allowed = allowedMethods(app, path);
    if (allowed.length > 0) {
      const error = new GatewayError(
        "BERTH_METHOD_NOT_ALLOWED",
        methodNotAllowedMessage(request.method, path, allowed),
      );
      return reply.code(405).header("allow", allowed.join(", ")).send(errorBody(error));
    }
    const error = new GatewayError(
      "BERTH_NOT_FOUND",
      `no route for ${request.method} ${request.url.split("?")[0]}`,
    );
    reply.code(404).send(errorBody(error));
  });

  for (const route of PROXIED_ROUTES) {
    app.post(route, (request, reply) => handleProxied(route, request, reply));
  }

  app.get("/v1/models", async (request, reply) => {
    const denied = await authenticateAnyModel(request);
    if (denied) return sendError(reply, denied);
    return { object: "list", data: directory.models().map(modelObject) };
  });

  app.get<{ Params: { model: string } }>("/v1/models/:model", async (request, reply) => {
    const denied = await authenticateAnyModel(request);
    if (denied) return sendError(reply, denied);
    const model = request.params.model;
    if (!directory.models().includes(model)) return sendError(reply, modelNotFound(model));
    return modelObject(model);
  });

  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_request, reply) => {
    const names = directory.models();
    const readyReplicas: Record<string, number> = {};
    const models: Record<string, { readyReplicas: number; available: boolean; reason?: string }> = {};
    for (const model of names) {
      const ready = directory.upstreams(model).filter((upstream) => upstream.state === "ready").length;
      const unavailable = ready > 0 ? undefined : directory.unavailable?.(model);
      readyReplicas[model] = ready;
      models[model] = {
        readyReplicas: ready,
        available: unavailable === undefined,
        ...(unavailable ? { reason: unavailable.reason } : {}),
      };
    }
    // Ready while some model can serve: one with no ready replica is held (scale from zero), not
    // refused; only when every model is unavailable (crash loops) is this gateway of no use.
    const noneCanServe = names.length > 0 && names.every((model) => models[model]?.available === false);
    const status = closing ? "draining" : noneCanServe ? "unavailable" : "ready";
    reply.code(status === "ready" ? 200 : 503);
    return { status, readyReplicas, models };
  });

  app.get("/metrics", async (request, reply) => {
    const denied = await authenticateMetrics(request);
    if (denied) return sendError(reply, denied);
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // Behind the same keys as /v1/models: it names models and replica addresses.
  app.get("/api/status", async (request, reply) => {
    const denied = await authenticateAnyModel(request);
    if (denied) return sendError(reply, denied);
    return buildStatus(directory, load, outliers, policies, now());
  });

  if (options.dashboard ?? true) registerDashboard(app);
  const history = options.history && new GatewayHistory({ ...DEFAULT_HISTORY_OPTIONS, ...options.history });
  const sampler =
    history &&
    new HistorySampler({
      directory,
      load,
      history,
      ...(options.console ? { desiredReplicas: () => options.console?.desiredReplicas() ?? {} } : {}),
    });
  registerConsoleApi(app, {
    ...(history ? { history } : {}),
    ...(options.console ? { source: options.console } : {}),
    authorize: authenticateAnyModel,
    sendError,
  });

  function draining(): GatewayError {
    return new GatewayError("BERTH_GATEWAY_DRAINING", "the gateway is shutting down", {
      retryAfterSeconds: DEFAULT_HOLD_OPTIONS.retryAfterSeconds,
    });
  }

  function modelObject(model: string) {
    return { id: model, object: "model", created: 0, owned_by: "berth" };
  }

  function modelNotFound(model: string): GatewayError {
    return new GatewayError(
      "BERTH_MODEL_NOT_FOUND",
      `model "${model}" is not served here; available: ${directory.models().join(", ") || "none"}`,
      { param: "model" },
    );
  }

  function sendError(reply: FastifyReply, error: GatewayError): FastifyReply {
    return reply.code(error.status).headers(errorHeaders(error)).send(errorBody(error));
  }

  /**
   * GET /metrics: open, unless a model with auth on sets spec.auth.protectMetrics; then any key of a
   * model with auth on will do (a Prometheus scrape sends it as a bearer token).
   */
  async function authenticateMetrics(request: FastifyRequest): Promise<GatewayError | undefined> {
    const protect = directory
      .models()
      .some((model) => directory.deployment(model)?.spec.auth.protectMetrics === true);
    return protect ? authenticateAnyModel(request) : undefined;
  }

  /** GET /v1/models: open if no model has auth on, else any key of any such model will do. */
  async function authenticateAnyModel(request: FastifyRequest): Promise<GatewayError | undefined> {
    const resolved = await Promise.all(directory.models().map((model) => policies.policy(model)));
    const protectedPolicies = resolved.filter((policy) => policy.auth.enabled);
    if (protectedPolicies.length === 0) return undefined;
    const token = bearerToken(request.headers.authorization);
    const accepted = protectedPolicies.some((policy) => policy.auth.keys?.verify(token) !== undefined);
    return accepted ? undefined : unauthorized(token);
  }

  function unauthorized(token: string | undefined): GatewayError {
    return new GatewayError(
      "BERTH_UNAUTHORIZED",
      token === undefined
        ? "missing API key: send it as 'Authorization: Bearer KEY'"
        : "incorrect API key provided",
    );
  }

  /**
   * What routing needs from the body. What the replica would refuse (a content type the route does
   * not take, malformed JSON) is refused here in the replica's words, without waking a replica.
   */
  function summarize(route: Route, request: FastifyRequest): RequestSummary {
    const body = request.body as Buffer | undefined;
    const contentType = request.headers["content-type"];
    if (!body || body.length === 0) {
      if (route === "/generate") return opaqueBody(0);
      throw new GatewayError("BERTH_INVALID_JSON", "request body must be a JSON object");
    }
    if (!acceptsMediaType(route, contentType)) {
      throw new GatewayError("BERTH_UNSUPPORTED_MEDIA_TYPE", unsupportedMediaTypeMessage(route, contentType));
    }
    const mediaType = mediaTypeOf(contentType);
    if (mediaType === "application/x-www-form-urlencoded") return inspectFormBody(body.toString("utf8"));
    if (mediaType === "multipart/form-data") return opaqueBody(body.length);
    const summary = inspectJsonBody(body.toString("utf8"));
    if (summary) return summary;
    try {
      parseJsonBody(body);
    } catch (error) {
      // Not UTF-8, malformed, empty: the same code and message as the replica's parser.
      const parseError = error as { code?: string; message: string };
      if (parseError.code === "BERTH_INVALID_UTF8" || parseError.code === "BERTH_INVALID_JSON")
        throw new GatewayError(parseError.code, parseError.message);
    }
    throw new GatewayError("BERTH_INVALID_JSON", "request body must be a JSON object");
  }

  function chooseModel(route: Route, request: FastifyRequest, summary: RequestSummary): string {
    const query = request.query as Record<string, string | string[] | undefined>;
    const fromQuery = route === "/generate" && typeof query.model === "string" ? query.model : undefined;
    const model = fromQuery ?? summary.model ?? directory.models()[0];
    if (model === undefined || !directory.models().includes(model)) throw modelNotFound(model ?? "");
    return model;
  }

  async function handleProxied(route: Route, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const startedAt = performance.now();
    const res = reply.raw;
    // The proxy writes the response itself (streaming, backpressure); fastify stays out of it.
    reply.hijack();
    let model = "unknown";
    let identity: string | undefined;
    let policy: ModelPolicy | undefined;
    let reservedTokens = 0;
    let admitted = false;
    let outcome: ProxyOutcome | undefined;
    let status = 500;
    let summary: RequestSummary | undefined;
    const abort = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) abort.abort(new ClientClosedError());
    };
    res.once("close", onClose);
    let deadlineTimer: NodeJS.Timeout | undefined;
    const trace = traceContextFor(request.headers.traceparent);
    try {
      if (closing) throw draining();
      summary = summarize(route, request);
      model = chooseModel(route, request, summary);
      policy = policies.resolvedPolicy(model) ?? (await policies.policy(model));
      if (policy.auth.enabled) {
        const token = bearerToken(request.headers.authorization);
        const keyName = policy.auth.keys?.verify(token);
        if (keyName === undefined) throw unauthorized(token);
        identity = `key:${keyName}`;
      } else {
        identity = `ip:${request.ip}`;
      }
      const admission = limiter.admit(
        `${model}\u0000${identity}`,
        policy.limits,
        estimateTokens(summary.size, summary.maxTokens),
      );
      if (!admission.admitted) {
        metrics.rateLimited.inc({ model, limit: admission.limit });
        throw new GatewayError(
          "BERTH_RATE_LIMITED",
          `rate limit reached for model "${model}" (${admission.limit} per minute); retry after ${Math.ceil(admission.retryAfterMs / 1000)} s`,
          { retryAfterSeconds: admission.retryAfterMs / 1000 },
        );
      }
      reservedTokens = admission.reservedTokens;
      admitted = true;
      load.requestStarted(model);
      const timeoutMs = requestDeadline(request, requestTimeoutMs);
      // The error is made only when the deadline passes: capturing a stack per request is not free.
      deadlineTimer = setTimeout(
        () => abort.abort(new GatewayError("BERTH_DEADLINE_EXCEEDED", deadlineMessage(timeoutMs))),
        timeoutMs,
      );
      outcome = await proxy.forward(
        {
          requestId: request.id,
          model,
          route,
          method: request.method,
          path: request.url,
          headers: request.headers,
          clientIp: request.ip,
          body: request.body as Buffer | undefined,
          summary,
          routing: policy.routing,
          signal: abort.signal,
          captureUsage: policy.limits.tokensPerMinute !== undefined,
          traceparent: formatTraceparent(trace),
        },
        res,
      );
      status = outcome.truncated && abort.signal.reason instanceof ClientClosedError ? 499 : outcome.status;
      if (outcome.truncated && abort.signal.reason instanceof GatewayError) status = 504;
    } catch (error) {
      status = writeError(request, res, error);
    } finally {
      clearTimeout(deadlineTimer);
      res.off("close", onClose);
      if (admitted) load.requestFinished(model);
      const seconds = (performance.now() - startedAt) / 1000;
      metrics.requests.inc({ model, route, code: String(status) });
      metrics.requestDuration.observe({ model, route }, seconds);
      if (outcome?.firstByteAt !== undefined && summary?.stream) {
        metrics.timeToFirstToken.observe({ model, route }, (outcome.firstByteAt - startedAt) / 1000);
      }
      if (admitted && policy && identity && outcome?.captured !== undefined) {
        const used = usageTokens(outcome.captured);
        if (used !== undefined)
          limiter.settle(`${model}\u0000${identity}`, policy.limits, reservedTokens, used);
      }
      const line = {
        reqId: request.id,
        ...traceLogFields(trace),
        model,
        route,
        status,
        replica: outcome?.upstreamId,
        attempts: outcome?.attempts,
        ms: Math.round(seconds * 1000),
      };
      // One line per request at info, with the request id and trace id the replica logs too.
      if (status >= 500) logger.warn(line, "request failed");
      else logger.info(line, "request");
    }
  }

  /** Writes a gateway error in OpenAI's shape, if no response was started; returns the status for metrics. */
  function writeError(request: FastifyRequest, res: ServerResponse, error: unknown): number {
    if (error instanceof ClientClosedError) return 499;
    const gatewayError =
      error instanceof GatewayError ? error : new GatewayError("BERTH_INTERNAL", "internal gateway error");
    if (!(error instanceof GatewayError)) logger.error({ err: error, reqId: request.id }, "gateway error");
    if (res.headersSent || res.destroyed) return gatewayError.status;
    const body = JSON.stringify(errorBody(gatewayError));
    res.writeHead(gatewayError.status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": String(Buffer.byteLength(body)),
      "x-request-id": request.id,
      ...errorHeaders(gatewayError),
    });
    res.end(body);
    return gatewayError.status;
  }

  return {
    app,
    load,
    metrics,
    async listen() {
      await app.listen({ host, port });
      sampler?.start(history?.options.intervalMs ?? DEFAULT_HISTORY_OPTIONS.intervalMs);
      const address = app.server.address();
      const boundPort = typeof address === "object" && address ? address.port : port;
      const urlHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
      return `http://${urlHost}:${boundPort}`;
    },
    checkConfig: () => policies.checkAll(),
    async close() {
      closing = true;
      unsubscribe();
      await sampler?.stop();
      waiter.close();
      // Requests in flight finish (a long generation included) within the grace period; after it
      // the upstream connections are cut, which ends their responses, so close always returns.
      const grace = setTimeout(() => {
        logger.warn("requests still in flight after the shutdown grace period: cutting them");
        void pools.destroy();
        app.server.closeAllConnections();
      }, options.shutdownGraceMs ?? 30_000);
      try {
        await connections.drain(options.idleLingerMs);
        await app.close();
      } finally {
        clearTimeout(grace);
      }
      await Promise.all([pools.close(), probe.close()]);
    },
  };
}

/** The configured deadline, or less when the client asks with `x-berth-timeout-ms`. */
function requestDeadline(request: FastifyRequest, maximumMs: number): number {
  const asked = Number(request.headers["x-berth-timeout-ms"]);
  return Number.isFinite(asked) && asked > 0 ? Math.min(asked, maximumMs) : maximumMs;
}
