// The contract between the gateway and whatever runs replicas (the controller, local or Kubernetes):
// which upstreams serve a model, and a way to ask for one when none is ready (scale from zero).

import type { ModelDeployment } from "../spec/index.js";

export type UpstreamState = "starting" | "ready" | "draining" | "stopped" | "failed";

export interface Upstream {
  /** Stable replica id, e.g. "tiny-gpt2-7f3a-1". */
  id: string;
  /** Served model name (the `model` field clients send). */
  model: string;
  /** Base URL of the replica's HTTP server, e.g. "http://127.0.0.1:41234". */
  url: string;
  state: UpstreamState;
  /** Spec generation the replica runs (rolling updates). */
  generation: number;
}

export interface UpstreamDirectory {
  /** Served model names. */
  models(): string[];
  deployment(model: string): ModelDeployment | undefined;
  /** All known upstreams of a model; only `ready` ones receive new requests. */
  upstreams(model: string): readonly Upstream[];
  /** A request arrived for a model with no ready upstream: start one if the spec allows (scale from zero). */
  wake(model: string): void;
  /** Called on any upstream change, so held requests can proceed. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
  /**
   * Why no replica of `model` can become ready now (every replica crash-looping, the model failed),
   * or undefined when one is ready or may soon be (starting, scaling from zero). The gateway then
   * answers at once instead of holding requests. Optional: a directory without it is never unavailable.
   */
  unavailable?(model: string): ModelUnavailable | undefined;
}

export interface ModelUnavailable {
  /** In words, for the client and the operator: what is wrong and what the replicas last said. */
  reason: string;
}

/** What the gateway reports to the autoscaler: load it sees, per model, sampled by the controller. */
export interface LoadSnapshot {
  model: string;
  /** Requests in flight through the gateway (proxied, plus held while scaling from zero). */
  inFlight: number;
  /** Requests held because no replica was ready. */
  held: number;
  /** Completed requests since the gateway started (to detect idleness). */
  completed: number;
  /** ms since epoch of the last request seen for this model; 0 if none. */
  lastRequestAt: number;
  perUpstream: Record<string, number>;
}

export interface LoadSource {
  load(model: string): LoadSnapshot;
}
