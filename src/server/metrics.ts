// The model server's Prometheus metrics (names from DESIGN.md), in a registry owned by one app:
// no global default registry, so several servers can live in one process (tests, benchmarks).

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Engine } from "../engine/types.js";

// Buckets span what an LLM replica sees: sub-millisecond token steps to multi-minute generations.
export const REQUEST_DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600,
];
export const TIME_TO_FIRST_TOKEN_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];
export const INTER_TOKEN_LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5,
];
// One bucket per small batch size: "7 of 8 sequences" must be distinguishable from 8.
export const BATCH_SIZE_BUCKETS = [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64];

export interface ServerMetrics {
  readonly registry: Registry;
  requestsTotal: Counter<"model" | "route" | "code">;
  requestDuration: Histogram<"model" | "route">;
  timeToFirstToken: Histogram<"model">;
  interTokenLatency: Histogram<"model">;
  promptTokens: Counter<"model">;
  generatedTokens: Counter<"model">;
  /** Prompt tokens found in a slot's KV cache (a reused prefix), not evaluated again. */
  cachedPromptTokens: Counter<"model">;
  batchSize: Histogram<"model">;
  /** Starts reading the engine's gauges and batch sizes; returns a function that stops it. */
  observeEngine(engine: Engine): () => void;
}

export function createServerMetrics(): ServerMetrics {
  const registry = new Registry();
  const registers = [registry];
  let engine: Engine | undefined;

  const requestsTotal = new Counter({
    name: "berth_requests_total",
    help: "Inference requests answered, by HTTP status (499: the client went away first)",
    labelNames: ["model", "route", "code"] as const,
    registers,
  });
  const requestDuration = new Histogram({
    name: "berth_request_duration_seconds",
    help: "Inference request duration, from arrival to the last byte",
    labelNames: ["model", "route"] as const,
    buckets: REQUEST_DURATION_BUCKETS,
    registers,
  });
  const timeToFirstToken = new Histogram({
    name: "berth_time_to_first_token_seconds",
    help: "Time from request arrival to the first generated token (queueing included)",
    labelNames: ["model"] as const,
    buckets: TIME_TO_FIRST_TOKEN_BUCKETS,
    registers,
  });
  const interTokenLatency = new Histogram({
    name: "berth_inter_token_latency_seconds",
    help: "Time between two generated tokens of one request",
    labelNames: ["model"] as const,
    buckets: INTER_TOKEN_LATENCY_BUCKETS,
    registers,
  });
  const promptTokens = new Counter({
    name: "berth_prompt_tokens_total",
    help: "Prompt tokens of inference requests",
    labelNames: ["model"] as const,
    registers,
  });
  const generatedTokens = new Counter({
    name: "berth_generated_tokens_total",
    help: "Tokens generated",
    labelNames: ["model"] as const,
    registers,
  });
  const cachedPromptTokens = new Counter({
    name: "berth_prompt_tokens_cached_total",
    help: "Prompt tokens reused from a slot's KV cache (a shared prefix) instead of evaluated",
    labelNames: ["model"] as const,
    registers,
  });
  const batchSize = new Histogram({
    name: "berth_batch_size",
    help: "Sequences decoded together in one engine decode call",
    labelNames: ["model"] as const,
    buckets: BATCH_SIZE_BUCKETS,
    registers,
  });
  // Read from the engine at scrape time, so the gauges are never stale.
  new Gauge({
    name: "berth_requests_running",
    help: "Sequences generating now",
    labelNames: ["model"] as const,
    registers,
    collect() {
      this.reset();
      if (engine) this.set({ model: engine.info.id }, engine.stats().running);
    },
  });
  new Gauge({
    name: "berth_requests_waiting",
    help: "Admitted requests waiting for a free sequence slot",
    labelNames: ["model"] as const,
    registers,
    collect() {
      this.reset();
      if (engine) this.set({ model: engine.info.id }, engine.stats().waiting);
    },
  });

  new Gauge({
    name: "berth_slots",
    help: "Sequence slots (requests decoded together at most)",
    labelNames: ["model"] as const,
    registers,
    collect() {
      this.reset();
      if (engine) this.set({ model: engine.info.id }, engine.stats().slots);
    },
  });
  new Gauge({
    name: "berth_requests_waiting_limit",
    help: "Requests that may wait for a slot; one more gets 429",
    labelNames: ["model"] as const,
    registers,
    collect() {
      this.reset();
      if (engine) this.set({ model: engine.info.id }, engine.stats().maxWaiting);
    },
  });

  return {
    registry,
    requestsTotal,
    requestDuration,
    timeToFirstToken,
    interTokenLatency,
    promptTokens,
    generatedTokens,
    cachedPromptTokens,
    batchSize,
    observeEngine(observed) {
      engine = observed;
      const model = observed.info.id;
      const unsubscribe = observed.onBatch((sequences) => batchSize.observe({ model }, sequences));
      return () => {
        unsubscribe();
        if (engine === observed) engine = undefined;
      };
    },
  };
}
