// `berth operator`'s health endpoint on a real socket (port 0), with a fake source of its state:
// 200/503 with a one-line reason, and Prometheus text from the operator's own registry.
import { register as globalRegistry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { type Check, type HealthServer, startHealthServer } from "./health.js";
import { createOperatorMetrics, type OperatorGauges } from "./metrics.js";

let server: HealthServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function fakeOperator() {
  const state = {
    live: { ok: true, detail: "ok" } as Check,
    ready: { ok: false, detail: "leading: informers not synced yet" } as Check,
    gauges: { leading: true, queueDepth: 3, resources: 7 } as OperatorGauges,
  };
  const metrics = createOperatorMetrics(() => state.gauges);
  return { state, metrics, source: { live: () => state.live, ready: () => state.ready } };
}

async function get(path: string): Promise<{ status: number; body: string; type: string | null }> {
  const response = await fetch(`${server?.url}${path}`);
  return { status: response.status, body: await response.text(), type: response.headers.get("content-type") };
}

/** Prometheus text as series (name and labels as printed) → value. */
function samples(text: string): Record<string, number> {
  const lines = text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
  return Object.fromEntries(
    lines.map((line) => [
      line.slice(0, line.lastIndexOf(" ")),
      Number(line.slice(line.lastIndexOf(" ") + 1)),
    ]),
  );
}

describe("berth operator's health endpoint", () => {
  it("answers /readyz 503 with the reason until ready, then 200; /healthz follows liveness", async () => {
    const { state, metrics, source } = fakeOperator();
    server = await startHealthServer({ source, registry: metrics.registry, host: "127.0.0.1", port: 0 });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.url).not.toMatch(/:0$/);

    expect(await get("/readyz")).toMatchObject({ status: 503, body: "leading: informers not synced yet\n" });
    expect(await get("/healthz")).toMatchObject({ status: 200, body: "ok\n" });

    state.ready = { ok: true, detail: "standing by: Lease held by op-a" };
    expect(await get("/readyz")).toMatchObject({ status: 200, body: "standing by: Lease held by op-a\n" });

    state.live = { ok: false, detail: "the controller did not start: boom\nsecond line" };
    const dead = await get("/healthz");
    expect(dead).toMatchObject({ status: 503, body: "the controller did not start: boom second line\n" });
    expect(dead.type).toMatch(/^text\/plain/);
  });

  it("serves its metrics from its own registry; counts move after a recorded reconcile", async () => {
    const { state, metrics, source } = fakeOperator();
    server = await startHealthServer({ source, registry: metrics.registry, host: "127.0.0.1", port: 0 });
    const before = await get("/metrics");
    expect(before.status).toBe(200);
    expect(before.type).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      "berth_operator_leader",
      "berth_operator_reconcile_total",
      "berth_operator_reconcile_seconds",
      "berth_operator_queue_depth",
      "berth_operator_resources",
      "process_cpu_seconds_total",
      "nodejs_eventloop_lag_seconds",
    ]) {
      expect(before.body).toContain(`# TYPE ${name} `);
    }
    expect(samples(before.body)).toMatchObject({
      berth_operator_leader: 1,
      berth_operator_queue_depth: 3,
      berth_operator_resources: 7,
      'berth_operator_reconcile_total{result="success"}': 0,
      'berth_operator_reconcile_total{result="error"}': 0,
      berth_operator_reconcile_seconds_count: 0,
    });

    metrics.recordReconcile("success", 0.02);
    metrics.recordReconcile("success", 0.3);
    metrics.recordReconcile("error", 1.5);
    state.gauges = { leading: false, queueDepth: 0, resources: 0 };
    const after = samples((await get("/metrics")).body);
    expect(after).toMatchObject({
      'berth_operator_reconcile_total{result="success"}': 2,
      'berth_operator_reconcile_total{result="error"}': 1,
      berth_operator_reconcile_seconds_count: 3,
      'berth_operator_reconcile_seconds_bucket{le="0.025"}': 1,
      berth_operator_leader: 0,
      berth_operator_queue_depth: 0,
    });
    expect(after.berth_operator_reconcile_seconds_sum).toBeCloseTo(1.82);

    // Nothing went to prom-client's global registry (two operators in one process keep apart).
    expect(await globalRegistry.metrics()).not.toContain("berth_operator_");
    expect(() => createOperatorMetrics(() => state.gauges)).not.toThrow();
  });

  it("refuses a port in use with the socket's error", async () => {
    const { metrics, source } = fakeOperator();
    server = await startHealthServer({ source, registry: metrics.registry, host: "127.0.0.1", port: 0 });
    const port = Number(new URL(server.url).port);
    await expect(
      startHealthServer({ source, registry: metrics.registry, host: "127.0.0.1", port }),
    ).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});
