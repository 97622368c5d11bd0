// The console's history alone: the ring keeps the newest points in order, scrapes of the replicas'
// real metrics registry (prom-client text) become rates and TTFT quantiles, restarts and missing
// replicas do not make negative or invented numbers, and the sampler records one point per model.
import { describe, expect, it } from "vitest";
import { MemoryDirectory, upstream } from "../../test/gateway/fixtures.js";
import { createServerMetrics } from "../server/metrics.js";
import {
  GatewayHistory,
  histogramQuantile,
  historyPoint,
  parseReplicaMetrics,
  type ReplicaSample,
  RingBuffer,
} from "./history.js";
import { HistorySampler } from "./history-sampler.js";
import { LoadTracker } from "./load.js";

describe("RingBuffer", () => {
  it.each([
    { capacity: 3, pushed: [], kept: [] },
    { capacity: 3, pushed: [1, 2], kept: [1, 2] },
    { capacity: 3, pushed: [1, 2, 3], kept: [1, 2, 3] },
    { capacity: 3, pushed: [1, 2, 3, 4], kept: [2, 3, 4] },
    { capacity: 3, pushed: [1, 2, 3, 4, 5, 6, 7], kept: [5, 6, 7] },
    { capacity: 1, pushed: [1, 2], kept: [2] },
  ])("capacity $capacity after $pushed keeps $kept", ({ capacity, pushed, kept }) => {
    const ring = new RingBuffer<number>(capacity);
    for (const item of pushed) ring.push(item);
    expect(ring.toArray()).toEqual(kept);
    expect(ring.length).toBe(kept.length);
  });

  it("never holds more than its capacity", () => {
    const ring = new RingBuffer<number>(300);
    for (let index = 0; index < 10_000; index++) ring.push(index);
    const items = ring.toArray();
    expect(items).toHaveLength(300);
    expect(items[0]).toBe(9_700);
    expect(items[299]).toBe(9_999);
  });

  it.each([0, -1, 1.5, Number.NaN])("refuses capacity %s", (capacity) => {
    expect(() => new RingBuffer(capacity)).toThrow(RangeError);
  });
});

describe("histogramQuantile", () => {
  const bounds = [0.1, 0.5, 1, Number.POSITIVE_INFINITY];
  it.each([
    { q: 0.5, counts: [0, 0, 0, 0], expected: null },
    { q: 0.5, counts: [10, 10, 10, 10], expected: 0.05 },
    { q: 0.5, counts: [0, 10, 10, 10], expected: 0.3 },
    { q: 0.95, counts: [0, 0, 20, 20], expected: 0.975 },
    // Beyond the last finite bound: the highest finite bound, as Prometheus answers.
    { q: 0.95, counts: [0, 0, 0, 4], expected: 1 },
  ])("q=$q of $counts is $expected", ({ q, counts, expected }) => {
    const value = histogramQuantile(q, bounds, counts);
    if (expected === null) expect(value).toBeNull();
    else expect(value).toBeCloseTo(expected, 9);
  });
});

async function replicaText(observe: (metrics: ReturnType<typeof createServerMetrics>) => void) {
  const metrics = createServerMetrics();
  observe(metrics);
  return metrics.registry.metrics();
}

describe("parseReplicaMetrics", () => {
  it("reads tokens and the TTFT histogram from a replica's real registry", async () => {
    const text = await replicaText((metrics) => {
      metrics.generatedTokens.inc({ model: "tiny" }, 120);
      metrics.timeToFirstToken.observe({ model: "tiny" }, 0.02);
      metrics.timeToFirstToken.observe({ model: "tiny" }, 0.2);
    });
    const sample = parseReplicaMetrics(text);
    expect(sample?.generatedTokens).toBe(120);
    expect(sample?.ttftBounds.at(-1)).toBe(Number.POSITIVE_INFINITY);
    expect(sample?.ttftCounts.at(-1)).toBe(2);
    expect(sample?.running).toBe(0);
    expect(sample?.waiting).toBe(0);
  });

  it("sums label sets and ignores comments and other series", () => {
    const sample = parseReplicaMetrics(
      [
        "# HELP berth_generated_tokens_total Tokens generated",
        'berth_generated_tokens_total{model="a"} 5',
        'berth_generated_tokens_total{model="b"} 7',
        'berth_requests_running{model="a"} 2',
        'berth_requests_waiting{model="a"} 3',
        'berth_prompt_tokens_total{model="a"} 1000',
      ].join("\n"),
    );
    expect(sample).toMatchObject({ generatedTokens: 12, running: 2, waiting: 3 });
  });

  it.each(["", "not metrics at all", "<html>404</html>", 'berth_requests_total{code="200"} 4'])(
    "answers undefined for text without the console's series: %j",
    (text) => {
      expect(parseReplicaMetrics(text)).toBeUndefined();
    },
  );
});

function sample(partial: Partial<ReplicaSample>): ReplicaSample {
  return {
    generatedTokens: 0,
    ttftBounds: [0.1, 1, Number.POSITIVE_INFINITY],
    ttftCounts: [0, 0, 0],
    running: 0,
    waiting: 0,
    ...partial,
  };
}

describe("historyPoint", () => {
  const base = { at: 10_000, seconds: 2, held: 0, ready: 1, desired: 1 };

  it("turns counter increases into tokens/s and TTFT quantiles of the interval only", () => {
    const point = historyPoint({
      ...base,
      previous: new Map([["r1", sample({ generatedTokens: 100, ttftCounts: [50, 50, 50] })]]),
      current: new Map([
        ["r1", sample({ generatedTokens: 300, ttftCounts: [50, 60, 60], running: 2, waiting: 1 })],
      ]),
      held: 4,
    });
    expect(point.tokensPerSecond).toBe(100);
    // The 10 new requests all fell in (0.1, 1]: the 50 older fast ones do not count.
    expect(point.ttftP50Ms).toBeCloseTo(550, 6);
    expect(point.ttftP95Ms).toBeCloseTo(955, 6);
    expect(point.queue).toBe(5);
    expect(point.running).toBe(2);
  });

  it("counts a restarted replica from zero instead of going negative", () => {
    const point = historyPoint({
      ...base,
      previous: new Map([["r1", sample({ generatedTokens: 5_000, ttftCounts: [90, 99, 100] })]]),
      current: new Map([["r1", sample({ generatedTokens: 40, ttftCounts: [2, 2, 2] })]]),
    });
    expect(point.tokensPerSecond).toBe(20);
    expect(point.ttftP95Ms).not.toBeNull();
    expect(point.ttftP95Ms as number).toBeLessThanOrEqual(100);
  });

  it("uses a replica seen for the first time only as a baseline, and has no TTFT without requests", () => {
    const point = historyPoint({
      ...base,
      previous: new Map(),
      current: new Map([["r2", sample({ generatedTokens: 9_999, ttftCounts: [1, 1, 1], running: 1 })]]),
    });
    expect(point.tokensPerSecond).toBe(0);
    expect(point.ttftP50Ms).toBeNull();
    expect(point.running).toBe(1);
  });

  it("has no rate for a first sample (no elapsed time)", () => {
    const same = sample({ generatedTokens: 10 });
    const point = historyPoint({
      ...base,
      seconds: 0,
      previous: new Map([["r1", sample({})]]),
      current: new Map([["r1", same]]),
    });
    expect(point.tokensPerSecond).toBe(0);
  });
});

describe("GatewayHistory and HistorySampler", () => {
  it("records one point per model per sample from scraped replicas; forgets models that left", async () => {
    const directory = new MemoryDirectory()
      .addModel("tiny", {
        upstreams: [
          upstream("tiny-1", "http://replica-1", "tiny"),
          upstream("tiny-2", "http://replica-2", "tiny"),
          upstream("tiny-3", "http://replica-3", "tiny", "starting"),
        ],
      })
      .addModel("idle");
    const load = new LoadTracker();
    const history = new GatewayHistory({ intervalMs: 2_000, capacity: 2 });
    const tokens = new Map([
      ["http://replica-1", 0],
      ["http://replica-2", 0],
    ]);
    const scraped: string[] = [];
    let clock = 1_000;
    const sampler = new HistorySampler({
      directory,
      load,
      history,
      now: () => clock,
      desiredReplicas: () => ({ tiny: 3 }),
      scrape: async (url) => {
        scraped.push(url);
        // replica-2 fails its scrape: the injected fault.
        if (url === "http://replica-2") throw new Error("connection refused");
        return replicaText((metrics) => metrics.generatedTokens.inc({ model: "tiny" }, tokens.get(url) ?? 0));
      },
    });

    await sampler.sampleOnce();
    tokens.set("http://replica-1", 50);
    clock += 2_000;
    await sampler.sampleOnce();
    clock += 2_000;
    tokens.set("http://replica-1", 90);
    await sampler.sampleOnce();

    expect(scraped).not.toContain("http://replica-3");
    const snapshot = history.snapshot();
    expect(snapshot.capacity).toBe(2);
    const points = snapshot.models.tiny ?? [];
    expect(points.map((point) => point.at)).toEqual([3_000, 5_000]);
    expect(points.map((point) => point.tokensPerSecond)).toEqual([25, 20]);
    expect(points.every((point) => point.ready === 2 && point.desired === 3)).toBe(true);
    expect(snapshot.models.idle?.map((point) => point.desired)).toEqual([null, null]);

    history.retainOnly(new Set(["tiny"]));
    expect(Object.keys(history.snapshot().models)).toEqual(["tiny"]);
  });
});
