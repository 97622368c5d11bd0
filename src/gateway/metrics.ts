// The gateway's Prometheus metrics, in a registry of its own (several gateways can live in one
// process in tests). Gauges are computed at scrape time from the load tracker and the directory.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { REQUEST_DURATION_BUCKETS, TIME_TO_FIRST_TOKEN_BUCKETS } from "../server/metrics.js";
import type { UpstreamDirectory, UpstreamState } from "./directory.js";
import type { LoadTracker } from "./load.js";

const UPSTREAM_STATES: readonly UpstreamState[] = ["starting", "ready", "draining", "stopped", "failed"];

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"model" | "route" | "code">;
  readonly requestDuration: Histogram<"model" | "route">;
  readonly timeToFirstToken: Histogram<"model" | "route">;
  readonly upstreamRequests: Counter<"model" | "replica" | "code">;
  readonly retries: Counter<"model" | "reason">;
  readonly ejections: Counter<"model" | "replica" | "reason">;
  readonly rateLimited: Counter<"model" | "limit">;

  constructor(directory: UpstreamDirectory, load: LoadTracker) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: "berth_requests_total",
      help: "Requests answered by the gateway, by model, route and HTTP status.",
      labelNames: ["model", "route", "code"],
      registers,
    });
    this.requestDuration = new Histogram({
      name: "berth_request_duration_seconds",
      help: "Time from a request's arrival at the gateway to the end of its response.",
      labelNames: ["model", "route"],
      // The replicas' buckets: the same metric name must share boundaries to be aggregated
      // (histogram_quantile over sum by (le)) across gateway and replicas.
      buckets: REQUEST_DURATION_BUCKETS,
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: "berth_time_to_first_token_seconds",
      help: "Time from a request's arrival at the gateway to the first response body byte sent to the client.",
      labelNames: ["model", "route"],
      buckets: TIME_TO_FIRST_TOKEN_BUCKETS,
      registers,
    });
    this.upstreamRequests = new Counter({
      name: "berth_upstream_requests_total",
      help: "Attempts sent to replicas, by replica and outcome (HTTP status, or refused/reset/hung).",
      labelNames: ["model", "replica", "code"],
      registers,
    });
    this.retries = new Counter({
      name: "berth_gateway_retries_total",
      help: "Requests sent to another replica after a failed attempt, by the reason of the failure.",
      labelNames: ["model", "reason"],
      registers,
    });
    this.ejections = new Counter({
      name: "berth_gateway_ejections_total",
      help: "Replicas taken out of rotation for a while (outlier ejection), by reason.",
      labelNames: ["model", "replica", "reason"],
      registers,
    });
    this.rateLimited = new Counter({
      name: "berth_gateway_rate_limited_total",
      help: "Requests refused with 429 by a rate limit, by limit (requests or tokens).",
      labelNames: ["model", "limit"],
      registers,
    });
    new Gauge({
      name: "berth_gateway_requests_in_flight",
      help: "Requests in flight through the gateway per model (proxied and held).",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        for (const model of new Set([...directory.models(), ...load.trackedModels()])) {
          this.set({ model }, load.load(model).inFlight);
        }
      },
    });
    new Gauge({
      name: "berth_gateway_requests_held",
      help: "Requests held per model because no replica was ready (scale from zero).",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        for (const model of new Set([...directory.models(), ...load.trackedModels()])) {
          this.set({ model }, load.load(model).held);
        }
      },
    });
    new Gauge({
      name: "berth_upstream_requests_in_flight",
      help: "Requests the gateway has in flight on each replica.",
      labelNames: ["model", "replica"],
      registers,
      collect() {
        this.reset();
        for (const model of directory.models()) {
          const perUpstream = load.load(model).perUpstream;
          for (const upstream of directory.upstreams(model)) {
            this.set({ model, replica: upstream.id }, perUpstream[upstream.id] ?? 0);
          }
        }
      },
    });
    new Gauge({
      name: "berth_replicas",
      help: "Replicas per model and state, as the directory reports them.",
      labelNames: ["model", "state"],
      registers,
      collect() {
        this.reset();
        for (const model of directory.models()) {
          const counts = new Map<UpstreamState, number>(UPSTREAM_STATES.map((state) => [state, 0]));
          for (const upstream of directory.upstreams(model)) {
            counts.set(upstream.state, (counts.get(upstream.state) ?? 0) + 1);
          }
          for (const [state, count] of counts) this.set({ model, state }, count);
        }
      },
    });
  }
}
