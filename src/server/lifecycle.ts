// The replica's life: loading (no engine yet), ready, draining. It also tracks in-flight generations
// so a shutdown can wait for them and, when the grace period is over, cancel what is left.

import type { Engine } from "../engine/types.js";

export type ServerState = "loading" | "ready" | "draining";

export class ServerLifecycle {
  #engine: Engine | undefined;
  #draining = false;
  readonly #inFlight = new Set<AbortController>();
  #idleWaiters: Array<() => void> = [];
  readonly #engineListeners: Array<(engine: Engine) => void> = [];

  constructor(engine?: Engine) {
    this.#engine = engine;
  }

  get engine(): Engine | undefined {
    return this.#engine;
  }

  get state(): ServerState {
    if (this.#draining) return "draining";
    return this.#engine ? "ready" : "loading";
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  setEngine(engine: Engine): void {
    this.#engine = engine;
    for (const listener of this.#engineListeners) listener(engine);
  }

  /** Called once the engine is set (at once if it already is). */
  onEngine(listener: (engine: Engine) => void): void {
    this.#engineListeners.push(listener);
    if (this.#engine) listener(this.#engine);
  }

  /** Readiness goes false and new requests are refused; in-flight ones continue. */
  beginDrain(): void {
    this.#draining = true;
  }

  /** Registers a generation's controller; call the returned function when it is over. */
  track(controller: AbortController): () => void {
    this.#inFlight.add(controller);
    return () => {
      this.#inFlight.delete(controller);
      if (this.#inFlight.size === 0) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const wake of waiters) wake();
      }
    };
  }

  /** Resolves when no generation is in flight. */
  whenIdle(): Promise<void> {
    if (this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Cancels every in-flight generation (grace period over); each answers with `reason`. */
  abortAll(reason: Error): void {
    for (const controller of this.#inFlight) controller.abort(reason);
  }
}
