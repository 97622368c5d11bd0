// The short history the console charts: a bounded ring of points per model (e.g. 10 min at 2 s),
// and the pure arithmetic that turns two scrapes of the replicas' /metrics into one point.
// No I/O and no timers here; history-sampler.ts scrapes and calls these on an interval.

/** A fixed-capacity buffer that keeps the newest `capacity` items, oldest first when read. */
export class RingBuffer<T> {
  readonly #items: T[] = [];
  #start = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`ring capacity must be a whole number ≥ 1, got ${capacity}`);
  }

  get length(): number {
    return this.#items.length;
  }

  push(item: T): void {
    if (this.#items.length < this.capacity) {
      this.#items.push(item);
      return;
    }
    this.#items[this.#start] = item;
    this.#start = (this.#start + 1) % this.capacity;
  }

  /** The items, oldest first. */
  toArray(): T[] {
    return [...this.#items.slice(this.#start), ...this.#items.slice(0, this.#start)];
  }
}

/** What one replica's /metrics says, summed over its label sets. */
export interface ReplicaSample {
  generatedTokens: number;
  /** Cumulative TTFT histogram: upper bounds (ascending, last +Inf) and counts. */
  ttftBounds: number[];
  ttftCounts: number[];
  running: number;
  waiting: number;
}

const METRIC_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/;

/** Reads the few series the console charts from Prometheus text; undefined when none is there. */
export function parseReplicaMetrics(text: string): ReplicaSample | undefined {
  let generatedTokens = 0;
  let running = 0;
  let waiting = 0;
  let found = false;
  const buckets = new Map<number, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = METRIC_LINE.exec(line);
    if (!match) continue;
    const [, name, labels = "", raw = ""] = match;
    const value = Number(raw);
    if (!Number.isFinite(value)) continue;
    switch (name) {
      case "berth_generated_tokens_total":
        generatedTokens += value;
        found = true;
        break;
      case "berth_requests_running":
        running += value;
        found = true;
        break;
      case "berth_requests_waiting":
        waiting += value;
        found = true;
        break;
      case "berth_time_to_first_token_seconds_bucket": {
        const le = /(?:^|,)le="([^"]+)"/.exec(labels)?.[1];
        if (le === undefined) break;
        const bound = le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le);
        if (Number.isNaN(bound)) break;
        buckets.set(bound, (buckets.get(bound) ?? 0) + value);
        found = true;
        break;
      }
    }
  }
  if (!found) return undefined;
  const ttftBounds = [...buckets.keys()].sort((a, b) => a - b);
  return {
    generatedTokens,
    running,
    waiting,
    ttftBounds,
    ttftCounts: ttftBounds.map((bound) => buckets.get(bound) ?? 0),
  };
}

/**
 * The q-quantile of a cumulative histogram, interpolated linearly inside the bucket as
 * Prometheus's histogram_quantile does; null without observations. The +Inf bucket answers
 * with the highest finite bound.
 */
export function histogramQuantile(q: number, bounds: number[], cumulative: number[]): number | null {
  const total = cumulative[cumulative.length - 1] ?? 0;
  if (total <= 0 || bounds.length === 0) return null;
  const rank = q * total;
  for (let index = 0; index < bounds.length; index++) {
    const count = cumulative[index] ?? 0;
    if (count < rank) continue;
    const upper = bounds[index] ?? 0;
    if (upper === Number.POSITIVE_INFINITY) return index > 0 ? (bounds[index - 1] ?? null) : null;
    const lower = index > 0 ? (bounds[index - 1] ?? 0) : 0;
    const below = index > 0 ? (cumulative[index - 1] ?? 0) : 0;
    const inBucket = count - below;
    return inBucket <= 0 ? upper : lower + (upper - lower) * ((rank - below) / inBucket);
  }
  return null;
}

/** One point of a model's history. Rates and quantiles cover the interval since the point before. */
export interface HistoryPoint {
  /** ms since epoch. */
  at: number;
  tokensPerSecond: number;
  /** TTFT quantiles at the replicas over the interval, ms; null when no request started. */
  ttftP50Ms: number | null;
  ttftP95Ms: number | null;
  /** Requests waiting: for a slot at the replicas plus held at the gateway (scale from zero). */
  queue: number;
  /** Sequences generating at the replicas. */
  running: number;
  ready: number;
  /** What the autoscaler wants; null where the gateway runs without a controller. */
  desired: number | null;
}

export interface PointInput {
  at: number;
  /** Seconds since the previous sample; rates are 0 when this is not positive. */
  seconds: number;
  /** Replica id → its previous scrape; replicas missing from it only set a baseline. */
  previous: ReadonlyMap<string, ReplicaSample>;
  current: ReadonlyMap<string, ReplicaSample>;
  held: number;
  ready: number;
  desired: number | null;
}

/** A counter's increase; a decrease means the replica restarted and counts from zero again. */
function increase(before: number, after: number): number {
  return after >= before ? after - before : after;
}

export function historyPoint(input: PointInput): HistoryPoint {
  let tokens = 0;
  let running = 0;
  let waiting = 0;
  const bucketIncrease = new Map<number, number>();
  for (const [replica, sample] of input.current) {
    running += sample.running;
    waiting += sample.waiting;
    const before = input.previous.get(replica);
    if (!before) continue;
    tokens += increase(before.generatedTokens, sample.generatedTokens);
    const restarted =
      sample.generatedTokens < before.generatedTokens ||
      (sample.ttftCounts[sample.ttftCounts.length - 1] ?? 0) <
        (before.ttftCounts[before.ttftCounts.length - 1] ?? 0);
    sample.ttftBounds.forEach((bound, index) => {
      const after = sample.ttftCounts[index] ?? 0;
      const beforeIndex = before.ttftBounds.indexOf(bound);
      const prior = restarted || beforeIndex < 0 ? 0 : (before.ttftCounts[beforeIndex] ?? 0);
      bucketIncrease.set(bound, (bucketIncrease.get(bound) ?? 0) + Math.max(0, after - prior));
    });
  }
  const bounds = [...bucketIncrease.keys()].sort((a, b) => a - b);
  const counts = bounds.map((bound) => bucketIncrease.get(bound) ?? 0);
  const toMs = (seconds: number | null) => (seconds === null ? null : seconds * 1000);
  return {
    at: input.at,
    tokensPerSecond: input.seconds > 0 ? tokens / input.seconds : 0,
    ttftP50Ms: toMs(histogramQuantile(0.5, bounds, counts)),
    ttftP95Ms: toMs(histogramQuantile(0.95, bounds, counts)),
    queue: waiting + input.held,
    running,
    ready: input.ready,
    desired: input.desired,
  };
}

export interface HistoryOptions {
  /** Sampling interval. Default 2 s. */
  intervalMs: number;
  /** Points kept per model. Default 300 (10 minutes at 2 s). */
  capacity: number;
}

export const DEFAULT_HISTORY_OPTIONS: HistoryOptions = { intervalMs: 2_000, capacity: 300 };

export interface HistorySnapshot {
  intervalMs: number;
  capacity: number;
  models: Record<string, HistoryPoint[]>;
}

/** The rings of every model; a model that leaves the directory leaves the history with it. */
export class GatewayHistory {
  readonly #rings = new Map<string, RingBuffer<HistoryPoint>>();

  constructor(readonly options: HistoryOptions = DEFAULT_HISTORY_OPTIONS) {}

  record(model: string, point: HistoryPoint): void {
    let ring = this.#rings.get(model);
    if (!ring) {
      ring = new RingBuffer(this.options.capacity);
      this.#rings.set(model, ring);
    }
    ring.push(point);
  }

  retainOnly(models: ReadonlySet<string>): void {
    for (const model of this.#rings.keys()) if (!models.has(model)) this.#rings.delete(model);
  }

  snapshot(): HistorySnapshot {
    return {
      intervalMs: this.options.intervalMs,
      capacity: this.options.capacity,
      models: Object.fromEntries([...this.#rings].map(([model, ring]) => [model, ring.toArray()])),
    };
  }
}
