// Forwards one request to a replica and streams the answer back: picks with the balancer, holds
// while no replica is ready, retries elsewhere until the first byte went out, ejects hung replicas.
import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { Dispatcher } from "undici";
import {
  buildHashRing,
  type Candidate,
  type HashRing,
  pickUpstream,
  type RoutingStrategy,
} from "./balancer.js";
import type { Upstream, UpstreamDirectory } from "./directory.js";
import { errorBody, GatewayError } from "./errors.js";
import { type ResponseHead, UpstreamExchange } from "./exchange.js";
import type { ReadyWaiter } from "./hold.js";
import type { RequestSummary } from "./inspect.js";
import type { LoadTracker } from "./load.js";
import type { GatewayMetrics } from "./metrics.js";
import type { EjectionReason, OutlierDetector } from "./outlier.js";
import type { UpstreamPools } from "./pools.js";
import type { LivenessProbe } from "./probe.js";

export interface ProxyOptions {
  /** Replicas one request may be sent to, first try included. */
  maxAttempts: number;
  /** Waiting this long for response headers makes the gateway ask the replica's /healthz. */
  stallProbeAfterMs: number;
  /** A replica that answered 503 (draining) is skipped this long. */
  drainingEjectionMs: number;
}

export const DEFAULT_PROXY_OPTIONS: ProxyOptions = {
  maxAttempts: 3,
  stallProbeAfterMs: 5_000,
  drainingEjectionMs: 2_000,
};

export interface RoutingSettings {
  strategy: RoutingStrategy;
  prefixLength: number;
  loadFactor: number;
}

export interface ProxyRequest {
  requestId: string;
  model: string;
  /** Metrics label of the route ("/v1/completions", ...). */
  route: string;
  method: string;
  /** Path and query as the client sent them. */
  path: string;
  headers: IncomingHttpHeaders;
  clientIp: string;
  body: Buffer | undefined;
  summary: RequestSummary;
  routing: RoutingSettings;
  /** Aborted when the client goes away or the deadline passes; the reason says which. */
  signal: AbortSignal;
  /** Keep the response's head and tail so the caller can read `usage` (token rate limits). */
  captureUsage: boolean;
  /** W3C traceparent for the replica: the caller's trace with the gateway's span as parent. */
  traceparent?: string;
}

export interface ProxyOutcome {
  status: number;
  upstreamId?: string;
  attempts: number;
  /** performance.now() of the first body byte written to the client. */
  firstByteAt?: number;
  /** The body ended early: the replica failed or the client left after the response started. */
  truncated: boolean;
  /** Head and tail of the response body, when captureUsage was asked. */
  captured?: string;
}

/** Why a request's signal was aborted when its client went away (logged and counted as 499). */
export class ClientClosedError extends Error {
  constructor() {
    super("client closed the connection");
    this.name = "ClientClosedError";
  }
}

type Failure =
  | { kind: "refused" | "reset" | "hung"; upstream: Upstream; message: string }
  | {
      /** 503 (draining) or 429 (its queue is full): the replica did not start the request. */
      kind: "draining" | "overloaded";
      upstream: Upstream;
      message: string;
      status: number;
      headers: IncomingHttpHeaders;
      body: Buffer;
    };

type AttemptResult =
  | { kind: "response"; exchange: UpstreamExchange; head: ResponseHead; release: () => void }
  | Failure;

// Hop-by-hop headers (RFC 9110 §7.6.1) and what the gateway sets itself.
const REQUEST_HEADERS_DROPPED = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
  "content-length",
  "expect",
  // The gateway's API keys are not the replicas' business: never forwarded, so never logged there.
  "authorization",
  "x-request-id",
  "x-berth-timeout-ms",
]);

const RESPONSE_HEADERS_DROPPED = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "x-request-id",
]);

const CONNECT_ERRORS = new Set([
  "ECONNREFUSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

const CAPTURE_HEAD = 4096;
const CAPTURE_TAIL = 8192;
const DRAINING_BODY_LIMIT = 64 * 1024;

export interface ProxyDependencies {
  directory: UpstreamDirectory;
  pools: UpstreamPools;
  outliers: OutlierDetector;
  load: LoadTracker;
  waiter: ReadyWaiter;
  probe: LivenessProbe;
  metrics: GatewayMetrics;
  options: ProxyOptions;
  random: () => number;
  /** least-load compares this many random replicas; undefined: pickLeastLoad's default. */
  leastLoadChoices?: number;
  now: () => number;
  /** Told when a replica is ejected or a request retried, for logs. */
  onEvent?: (event: ProxyEvent) => void;
}

export type ProxyEvent =
  | {
      type: "ejected";
      requestId: string;
      model: string;
      upstream: string;
      reason: EjectionReason;
      until: number;
    }
  | {
      type: "retry";
      requestId: string;
      model: string;
      upstream: string;
      reason: Failure["kind"];
      message: string;
    };

export class UpstreamProxy {
  private readonly sequences = new Map<string, number>();
  private readonly rings = new Map<string, { key: string; ring: HashRing }>();

  constructor(private readonly deps: ProxyDependencies) {}

  /**
   * Sends the request to a replica and streams the response into `res`. Throws a GatewayError (or
   * the signal's reason) when no response was started, so the caller answers with one error shape.
   */
  async forward(request: ProxyRequest, res: ServerResponse): Promise<ProxyOutcome> {
    const { options } = this.deps;
    const tried = new Set<string>();
    const upstreamHeaders = buildUpstreamHeaders(request);
    let lastFailure: Failure | undefined;
    // The last replica that answered "not now" (503 draining, 429 overloaded): passed on if nothing better.
    let lastRefusal: Extract<Failure, { kind: "draining" | "overloaded" }> | undefined;
    let holds = 0;
    for (let attempt = 1; attempt <= options.maxAttempts; ) {
      if (request.signal.aborted) throw request.signal.reason;
      const upstream = this.pick(request, tried);
      if (!upstream) {
        // Everything ready was tried: give up with the last failure. Nothing ready at all: hold.
        if (tried.size > 0 || holds >= 3) break;
        holds++;
        await this.deps.waiter.wait(request.model, request.signal);
        continue;
      }
      tried.add(upstream.id);
      const result = await this.attempt(upstream, request, upstreamHeaders);
      if (result.kind === "response") {
        return this.respond(result, upstream, request, res, attempt);
      }
      lastFailure = result;
      if (result.kind === "draining" || result.kind === "overloaded") lastRefusal = result;
      this.recordFailure(result, request);
      attempt++;
      if (attempt <= options.maxAttempts) {
        this.deps.metrics.retries.inc({ model: request.model, reason: result.kind });
        this.deps.onEvent?.({
          type: "retry",
          requestId: request.requestId,
          model: request.model,
          upstream: upstream.id,
          reason: result.kind,
          message: result.message,
        });
      }
    }
    if (lastRefusal) {
      // Nowhere else to go: the client gets a replica's own answer (BERTH_DRAINING 503 or
      // BERTH_OVERLOADED 429, with its Retry-After): an overload, told as one.
      return this.respondBuffered(lastRefusal, request, res, tried.size);
    }
    if (lastFailure?.kind === "hung") {
      throw new GatewayError(
        "BERTH_UPSTREAM_TIMEOUT",
        `replica ${lastFailure.upstream.id} of model "${request.model}" stopped answering and no other replica could take the request`,
      );
    }
    if (lastFailure) {
      throw new GatewayError(
        "BERTH_UPSTREAM_UNAVAILABLE",
        `no replica of model "${request.model}" could be reached (last: ${lastFailure.message})`,
      );
    }
    throw new GatewayError("BERTH_NO_REPLICA", `model "${request.model}" has no ready replica`, {
      retryAfterSeconds: 5,
    });
  }

  private pick(request: ProxyRequest, tried: ReadonlySet<string>): Upstream | undefined {
    const { directory, load, outliers, now, random } = this.deps;
    const upstreams = directory.upstreams(request.model);
    if (upstreams.length === 0) return undefined;
    const at = now();
    const candidates: Candidate[] = upstreams.map((upstream) => ({
      id: upstream.id,
      state: upstream.state,
      inFlight: load.upstreamInFlight(request.model, upstream.id),
      ejected: outliers.isEjected(upstream.id, at),
    }));
    const sequence = this.sequences.get(request.model) ?? 0;
    const { strategy, prefixLength, loadFactor } = request.routing;
    const prefix = strategy === "prefix-hash" ? request.summary.promptPrefix(prefixLength) : undefined;
    const chosen = pickUpstream(candidates, {
      strategy,
      random,
      ...(this.deps.leastLoadChoices === undefined ? {} : { choices: this.deps.leastLoadChoices }),
      sequence,
      loadFactor,
      exclude: tried,
      ...(prefix === undefined ? {} : { prefix }),
      ringOf: (ids) => this.ringOf(request.model, ids),
    });
    if (!chosen) return undefined;
    this.sequences.set(request.model, sequence + 1);
    return upstreams.find((upstream) => upstream.id === chosen.id);
  }

  private ringOf(model: string, ids: readonly string[]): HashRing {
    const key = ids.join("\n");
    const cached = this.rings.get(model);
    if (cached?.key === key) return cached.ring;
    const ring = buildHashRing(ids);
    this.rings.set(model, { key, ring });
    return ring;
  }

  /** One try on one replica, up to its response headers. */
  private async attempt(
    upstream: Upstream,
    request: ProxyRequest,
    headers: Record<string, string | string[]>,
  ): Promise<AttemptResult> {
    const { pools, load, probe, options } = this.deps;
    const target = pools.target(upstream.url);
    const exchange = new UpstreamExchange();
    // Stays until the body ends: a client that leaves or a deadline that passes cancels it.
    const forwardAbort = () => exchange.abort(request.signal.reason as Error);
    request.signal.addEventListener("abort", forwardAbort, { once: true });
    const release = () => request.signal.removeEventListener("abort", forwardAbort);
    let waitingForHeaders = true;
    let hung = false;
    let stallTimer: NodeJS.Timeout | undefined;
    // A replica that accepted the request but sends nothing may be slow (a long non-streaming
    // generation answers only at its end) or hung: only a failed /healthz probe tells them apart.
    const checkStall = async () => {
      const alive = await probe.alive(upstream.url);
      if (!waitingForHeaders) return;
      if (alive) {
        stallTimer = setTimeout(checkStall, options.stallProbeAfterMs);
      } else {
        hung = true;
        exchange.abort(new HungUpstream());
      }
    };
    stallTimer = setTimeout(checkStall, options.stallProbeAfterMs);
    load.upstreamStarted(request.model, upstream.id);
    exchange.start(target.pool, {
      method: request.method as Dispatcher.HttpMethod,
      path: target.basePath + request.path,
      headers,
      body: request.body ?? null,
    });
    let head: ResponseHead;
    try {
      head = await exchange.head;
    } catch (error) {
      waitingForHeaders = false;
      clearTimeout(stallTimer);
      release();
      load.upstreamFinished(request.model, upstream.id);
      if (request.signal.aborted) throw request.signal.reason;
      if (hung) return { kind: "hung", upstream, message: `replica ${upstream.id} stopped answering` };
      const code = (error as { code?: string }).code ?? "";
      return {
        kind: CONNECT_ERRORS.has(code) ? "refused" : "reset",
        upstream,
        message: `replica ${upstream.id}: ${code || (error as Error).message}`,
      };
    }
    waitingForHeaders = false;
    clearTimeout(stallTimer);
    // A replica that refused the request before starting it (draining, or its queue is full) leaves
    // it to another one: round-robin onto a replica busy with long requests is not the client's fault.
    if (head.statusCode === 503 || head.statusCode === 429) {
      const body = await collectBody(exchange, DRAINING_BODY_LIMIT).catch(() => Buffer.alloc(0));
      release();
      load.upstreamFinished(request.model, upstream.id);
      return {
        kind: head.statusCode === 503 ? "draining" : "overloaded",
        upstream,
        message: `replica ${upstream.id} answered 503`,
        status: head.statusCode,
        headers: head.headers,
        body,
      };
    }
    return { kind: "response", exchange, head, release };
  }

  private recordFailure(failure: Failure, request: ProxyRequest): void {
    const { outliers, metrics, now, options } = this.deps;
    const code = "status" in failure ? String(failure.status) : failure.kind;
    metrics.upstreamRequests.inc({ model: request.model, replica: failure.upstream.id, code });
    // A reset connection (a keep-alive socket the replica closed) says nothing about the replica,
    // nor does a full queue (it empties as requests finish); a refused connection, a hang or a 503 does.
    if (failure.kind === "reset" || failure.kind === "overloaded") return;
    const reason: EjectionReason = failure.kind;
    const until = outliers.eject(
      failure.upstream.id,
      now(),
      reason,
      reason === "draining" ? options.drainingEjectionMs : undefined,
    );
    metrics.ejections.inc({ model: request.model, replica: failure.upstream.id, reason });
    this.deps.onEvent?.({
      type: "ejected",
      requestId: request.requestId,
      model: request.model,
      upstream: failure.upstream.id,
      reason,
      until,
    });
  }

  /** Streams the replica's response to the client with backpressure. Never retried from here on. */
  private respond(
    result: Extract<AttemptResult, { kind: "response" }>,
    upstream: Upstream,
    request: ProxyRequest,
    res: ServerResponse,
    attempts: number,
  ): Promise<ProxyOutcome> {
    const { load, outliers, metrics, now } = this.deps;
    const { exchange, head } = result;
    outliers.recordSuccess(upstream.id, now());
    metrics.upstreamRequests.inc({
      model: request.model,
      replica: upstream.id,
      code: String(head.statusCode),
    });
    res.writeHead(head.statusCode, responseHeaders(head.headers, request.requestId, upstream.id));
    // A stream's headers go out now (Node would hold them until the first event), so a client sees
    // the 200 while the replica still works on the first token. Other bodies go with their headers.
    const eventStream = String(head.headers["content-type"] ?? "").startsWith("text/event-stream");
    if (eventStream) res.flushHeaders();
    return new Promise<ProxyOutcome>((resolve) => {
      let settled = false;
      let firstByteAt: number | undefined;
      let captured = "";
      let tail = "";
      const finish = (truncated: boolean) => {
        if (settled) return;
        settled = true;
        res.off("drain", onDrain);
        res.off("close", onClose);
        result.release();
        load.upstreamFinished(request.model, upstream.id);
        resolve({
          status: head.statusCode,
          upstreamId: upstream.id,
          attempts,
          ...(firstByteAt === undefined ? {} : { firstByteAt }),
          truncated,
          ...(request.captureUsage ? { captured: `${captured}\n${tail}` } : {}),
        });
      };
      const onDrain = () => exchange.resume();
      const onClose = () => {
        if (res.writableFinished) return;
        // The client left mid-response: cancel the replica's request.
        exchange.abort(new ClientClosedError());
        finish(true);
      };
      res.on("drain", onDrain);
      res.on("close", onClose);
      exchange.attach({
        data: (chunk) => {
          firstByteAt ??= performance.now();
          if (request.captureUsage) {
            const text = chunk.toString("utf8");
            if (captured.length < CAPTURE_HEAD) captured += text.slice(0, CAPTURE_HEAD - captured.length);
            tail = (tail + text).slice(-CAPTURE_TAIL);
          }
          return res.write(chunk);
        },
        end: () => {
          res.end();
          finish(false);
        },
        error: () => {
          const reason = request.signal.reason;
          if (!eventStream || reason instanceof ClientClosedError || res.destroyed) {
            // A JSON body cannot be mended: the client sees a cut response (and knows it).
            res.destroy();
            finish(true);
            return;
          }
          // A stream ends as the replica ends one: an error event the openai client raises, so a
          // deadline or a replica that died is told, never mistaken for a cut or a complete answer.
          const error =
            reason instanceof GatewayError
              ? reason
              : new GatewayError(
                  "BERTH_UPSTREAM_UNAVAILABLE",
                  `replica ${upstream.id} of model "${request.model}" failed while streaming the response`,
                );
          res.end(`data: ${JSON.stringify(errorBody(error))}\n\n`);
          finish(true);
        },
      });
    });
  }

  private respondBuffered(
    failure: Extract<Failure, { kind: "draining" | "overloaded" }>,
    request: ProxyRequest,
    res: ServerResponse,
    attempts: number,
  ): ProxyOutcome {
    const headers = responseHeaders(failure.headers, request.requestId, failure.upstream.id);
    headers["content-length"] = String(failure.body.length);
    res.writeHead(failure.status, headers);
    res.end(failure.body);
    return { status: failure.status, upstreamId: failure.upstream.id, attempts, truncated: false };
  }
}

/** Marks an attempt aborted because its replica failed the liveness probe. */
class HungUpstream extends Error {
  constructor() {
    super("replica stopped answering");
  }
}

function buildUpstreamHeaders(request: ProxyRequest): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || REQUEST_HEADERS_DROPPED.has(name)) continue;
    headers[name] = value;
  }
  headers["x-request-id"] = request.requestId;
  if (request.traceparent !== undefined) headers.traceparent = request.traceparent;
  const forwardedFor = request.headers["x-forwarded-for"];
  headers["x-forwarded-for"] = forwardedFor ? `${forwardedFor}, ${request.clientIp}` : request.clientIp;
  if (request.body) headers["content-length"] = String(request.body.length);
  return headers;
}

function responseHeaders(
  upstreamHeaders: IncomingHttpHeaders,
  requestId: string,
  upstreamId: string,
): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstreamHeaders)) {
    if (value === undefined || RESPONSE_HEADERS_DROPPED.has(name)) continue;
    headers[name] = value;
  }
  headers["x-request-id"] = requestId;
  headers["x-berth-replica"] = upstreamId;
  return headers;
}

/** The whole body, up to `limit` bytes (beyond it the exchange is aborted and what came is kept). */
function collectBody(exchange: UpstreamExchange, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    exchange.attach({
      data: (chunk) => {
        size += chunk.length;
        if (size > limit) {
          exchange.abort(new Error("response body too large"));
          return false;
        }
        chunks.push(chunk);
        return true;
      },
      end: () => resolve(Buffer.concat(chunks)),
      error: (error) => (size > limit ? resolve(Buffer.concat(chunks)) : reject(error)),
    });
  });
}
