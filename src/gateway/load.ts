// What the gateway knows about load: requests in flight per model and per upstream, held requests,
// completions. Implements LoadSource for the autoscaler; plain counters, the clock comes in.
import type { LoadSnapshot, LoadSource } from "./directory.js";

interface ModelLoad {
  inFlight: number;
  held: number;
  completed: number;
  lastRequestAt: number;
  perUpstream: Map<string, number>;
}

export class LoadTracker implements LoadSource {
  private readonly models = new Map<string, ModelLoad>();

  constructor(private readonly now: () => number = Date.now) {}

  private model(model: string): ModelLoad {
    let entry = this.models.get(model);
    if (!entry) {
      entry = { inFlight: 0, held: 0, completed: 0, lastRequestAt: 0, perUpstream: new Map() };
      this.models.set(model, entry);
    }
    return entry;
  }

  /** A request for `model` was admitted (held or proxied until requestFinished). */
  requestStarted(model: string): void {
    const entry = this.model(model);
    entry.inFlight++;
    entry.lastRequestAt = this.now();
  }

  requestFinished(model: string): void {
    const entry = this.model(model);
    entry.inFlight = Math.max(0, entry.inFlight - 1);
    entry.completed++;
    entry.lastRequestAt = this.now();
  }

  holdStarted(model: string): void {
    this.model(model).held++;
  }

  holdFinished(model: string): void {
    const entry = this.model(model);
    entry.held = Math.max(0, entry.held - 1);
  }

  upstreamStarted(model: string, upstreamId: string): void {
    const perUpstream = this.model(model).perUpstream;
    perUpstream.set(upstreamId, (perUpstream.get(upstreamId) ?? 0) + 1);
  }

  upstreamFinished(model: string, upstreamId: string): void {
    const perUpstream = this.model(model).perUpstream;
    const next = (perUpstream.get(upstreamId) ?? 0) - 1;
    // Entries of idle upstreams are dropped so replicas that went away leave nothing behind.
    if (next <= 0) perUpstream.delete(upstreamId);
    else perUpstream.set(upstreamId, next);
  }

  upstreamInFlight(model: string, upstreamId: string): number {
    return this.models.get(model)?.perUpstream.get(upstreamId) ?? 0;
  }

  load(model: string): LoadSnapshot {
    const entry = this.models.get(model);
    if (!entry) return { model, inFlight: 0, held: 0, completed: 0, lastRequestAt: 0, perUpstream: {} };
    return {
      model,
      inFlight: entry.inFlight,
      held: entry.held,
      completed: entry.completed,
      lastRequestAt: entry.lastRequestAt,
      perUpstream: Object.fromEntries(entry.perUpstream),
    };
  }

  trackedModels(): string[] {
    return [...this.models.keys()];
  }
}
