// Scale from zero: a request for a model with no ready replica asks the directory to wake one and
// waits (bounded count per model, bounded time) until the directory reports a ready replica.
import type { UpstreamDirectory } from "./directory.js";
import { GatewayError } from "./errors.js";

export interface HoldOptions {
  /** Requests held per model at most; beyond it a request gets 503 at once. */
  maxHeldPerModel: number;
  /** How long a request waits for a replica before 503. */
  holdTimeoutMs: number;
  /** Retry-After sent with those 503s. */
  retryAfterSeconds: number;
}

export const DEFAULT_HOLD_OPTIONS: HoldOptions = {
  maxHeldPerModel: 256,
  holdTimeoutMs: 120_000,
  retryAfterSeconds: 5,
};

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface HoldHooks {
  onHoldStart?: (model: string) => void;
  onHoldEnd?: (model: string) => void;
}

export function hasReadyUpstream(directory: UpstreamDirectory, model: string): boolean {
  return directory.upstreams(model).some((upstream) => upstream.state === "ready");
}

/**
 * The 503 for a model none of whose replicas can become ready (crash loop, failed model), or
 * undefined: holding a request for it would only make the client wait for the same answer.
 */
export function unavailableError(
  directory: UpstreamDirectory,
  model: string,
  retryAfterSeconds: number,
): GatewayError | undefined {
  const unavailable = directory.unavailable?.(model);
  if (!unavailable) return undefined;
  return new GatewayError("BERTH_MODEL_UNAVAILABLE", `model "${model}" cannot serve: ${unavailable.reason}`, {
    retryAfterSeconds,
  });
}

export class ReadyWaiter {
  private readonly waiting = new Map<string, Set<Waiter>>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    private readonly directory: UpstreamDirectory,
    private readonly options: HoldOptions = DEFAULT_HOLD_OPTIONS,
    private readonly hooks: HoldHooks = {},
  ) {
    this.unsubscribe = directory.onChange(() => this.release());
  }

  heldCount(model: string): number {
    return this.waiting.get(model)?.size ?? 0;
  }

  /**
   * Resolves when `model` has a ready upstream (at once if it has one). Rejects with BERTH_HOLD_FULL,
   * BERTH_NO_REPLICA after the hold timeout, BERTH_MODEL_UNAVAILABLE at once (or as soon as it
   * becomes so) when no replica can become ready, BERTH_GATEWAY_DRAINING on close, or the signal's reason.
   */
  wait(model: string, signal: AbortSignal): Promise<void> {
    if (hasReadyUpstream(this.directory, model)) return Promise.resolve();
    if (this.closed) {
      return Promise.reject(
        new GatewayError("BERTH_GATEWAY_DRAINING", "the gateway is shutting down", {
          retryAfterSeconds: this.options.retryAfterSeconds,
        }),
      );
    }
    const unavailable = unavailableError(this.directory, model, this.options.retryAfterSeconds);
    if (unavailable) {
      // Still asked: a model scaled to zero after a crash loop gets a fresh replica to try.
      this.directory.wake(model);
      return Promise.reject(unavailable);
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    const waiters = this.waiting.get(model) ?? new Set<Waiter>();
    if (waiters.size >= this.options.maxHeldPerModel) {
      return Promise.reject(
        new GatewayError(
          "BERTH_HOLD_FULL",
          `model "${model}" has no ready replica and ${waiters.size} requests are already waiting for one`,
          { retryAfterSeconds: this.options.retryAfterSeconds },
        ),
      );
    }
    this.waiting.set(model, waiters);
    return new Promise<void>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        waiters.delete(waiter);
        if (waiters.size === 0) this.waiting.delete(model);
        this.hooks.onHoldEnd?.(model);
      };
      const waiter: Waiter = {
        resolve: () => {
          finish();
          resolve();
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      };
      const onAbort = () => waiter.reject(signal.reason);
      const timer = setTimeout(
        () =>
          waiter.reject(
            new GatewayError(
              "BERTH_NO_REPLICA",
              `model "${model}" has no ready replica (waited ${Math.round(this.options.holdTimeoutMs / 1000)} s for one to start)`,
              { retryAfterSeconds: this.options.retryAfterSeconds },
            ),
          ),
        this.options.holdTimeoutMs,
      );
      signal.addEventListener("abort", onAbort, { once: true });
      waiters.add(waiter);
      this.hooks.onHoldStart?.(model);
      // Asked on every held request: waking is idempotent for the controller, and a wake that was
      // lost (a replica that crashed while starting) is asked again.
      this.directory.wake(model);
      // The directory may have a ready replica already (wake can act synchronously).
      if (hasReadyUpstream(this.directory, model)) waiter.resolve();
    });
  }

  /** Releases every waiter whose model now has a ready upstream, or can no longer get one. */
  private release(): void {
    for (const [model, waiters] of this.waiting) {
      if (hasReadyUpstream(this.directory, model)) {
        for (const waiter of [...waiters]) waiter.resolve();
        continue;
      }
      const unavailable = unavailableError(this.directory, model, this.options.retryAfterSeconds);
      if (unavailable) for (const waiter of [...waiters]) waiter.reject(unavailable);
    }
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    const error = new GatewayError("BERTH_GATEWAY_DRAINING", "the gateway is shutting down", {
      retryAfterSeconds: this.options.retryAfterSeconds,
    });
    for (const waiters of this.waiting.values()) for (const waiter of [...waiters]) waiter.reject(error);
  }
}
