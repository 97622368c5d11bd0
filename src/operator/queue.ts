// The operator's work queue: keys ("namespace/name") to reconcile, handed to a few workers.
// Shaped after client-go's workqueue: a key is queued at most once however many events name it
// (coalescing), never handled by two workers at once (an event during its reconcile queues it again
// for after), and a failed key comes back after a per-key exponential backoff with jitter.

export interface BackoffOptions {
  /** First retry delay. Default 500 ms. */
  baseMs?: number;
  /** Longest retry delay. Default 5 min. */
  maxMs?: number;
  /** Up to this fraction is added at random, so keys that failed together do not retry together. Default 0.2. */
  jitter?: number;
}

/** The delay before retry number `failures` (1 = first retry): base·2^(failures−1), capped, plus jitter. */
export function backoffDelay(failures: number, options: BackoffOptions = {}, random = Math.random): number {
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 5 * 60_000;
  const jitter = options.jitter ?? 0.2;
  const exponential = Math.min(max, base * 2 ** Math.max(0, Math.min(failures - 1, 40)));
  return Math.round(exponential * (1 + jitter * random()));
}

/** What a handler asks for: nothing (done), or to be looked at again later (e.g. a rollout in progress). */
export type HandlerResult = undefined | { requeueAfterMs: number };

export interface WorkQueueOptions extends BackoffOptions {
  /** Called when a handler throws, with the delay before its retry. */
  onError?: (key: string, error: unknown, retryInMs: number, failures: number) => void;
}

export class WorkQueue {
  readonly #options: WorkQueueOptions;
  /** Keys waiting for a worker, in order. */
  readonly #ready: string[] = [];
  /** Keys queued and not yet taken (a key in #ready, or one that comes back after its reconcile). */
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; handle: NodeJS.Timeout }>();
  #waiters: Array<() => void> = [];
  #stopped = false;
  #workers: Promise<void>[] = [];

  constructor(options: WorkQueueOptions = {}) {
    this.#options = options;
  }

  /** Queues the key now (once, however often it is added before a worker takes it). */
  add(key: string): void {
    if (this.#stopped || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return; // queued again when its reconcile ends
    this.#ready.push(key);
    this.#wake();
  }

  /** Queues the key after a delay; an earlier pending delay for it wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.#stopped) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.#timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.handle);
    const handle = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    handle.unref();
    this.#timers.set(key, { at, handle });
  }

  /** Keys queued or being reconciled (for tests and status). */
  get length(): number {
    return this.#dirty.size + this.#processing.size;
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Starts `concurrency` workers calling `handler` for each key. */
  run(concurrency: number, handler: (key: string) => Promise<HandlerResult>): void {
    for (let index = 0; index < concurrency; index++) this.#workers.push(this.#work(handler));
  }

  /** Takes no more keys, drops pending retries and waits for the reconciles in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { handle } of this.#timers.values()) clearTimeout(handle);
    this.#timers.clear();
    this.#ready.length = 0;
    this.#dirty.clear();
    this.#wake(true);
    await Promise.all(this.#workers);
  }

  async #work(handler: (key: string) => Promise<HandlerResult>): Promise<void> {
    for (;;) {
      const key = await this.#take();
      if (key === undefined) return;
      try {
        const result = await handler(key);
        this.#failures.delete(key);
        if (result) this.addAfter(key, result.requeueAfterMs);
      } catch (error) {
        const failures = (this.#failures.get(key) ?? 0) + 1;
        this.#failures.set(key, failures);
        const delay = backoffDelay(failures, this.#options);
        this.#options.onError?.(key, error, delay, failures);
        this.addAfter(key, delay);
      } finally {
        this.#processing.delete(key);
        // Events that arrived during the reconcile: once more, now that it has ended.
        if (this.#dirty.has(key) && !this.#stopped) {
          this.#ready.push(key);
          this.#wake();
        }
      }
    }
  }

  async #take(): Promise<string | undefined> {
    for (;;) {
      if (this.#stopped) return undefined;
      const key = this.#ready.shift();
      if (key !== undefined) {
        this.#dirty.delete(key);
        this.#processing.add(key);
        return key;
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  #wake(all = false): void {
    const waiters = all ? this.#waiters : this.#waiters.splice(0, 1);
    if (all) this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}
