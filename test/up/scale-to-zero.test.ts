// Acceptance 3 with real processes: with replicas.min 0 the model goes to zero replicas after the
// idle period, and the next request succeeds, held by the gateway during the cold start. Then
// `berth up` is SIGKILLed: its replicas notice the parent is gone and exit on their own.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alive, type BerthUp, specText, startBerthUp, waitFor } from "./harness.js";

const SPEC = specText({
  replicas: "{ min: 0, max: 2 }",
  parallel: 2,
  autoscaling: "{ targetInFlight: 2, stableWindow: 4s, panicWindow: 1s, scaleDownDelay: 2s, idleToZero: 5s }",
});

describe.sequential("berth up: scale to zero", () => {
  let up: BerthUp;

  beforeAll(async () => {
    up = await startBerthUp(SPEC);
  }, 180_000);

  afterAll(async () => {
    await up?.cleanup();
  }, 120_000);

  it("has zero replicas after the idle period and serves the next request through a cold start", async () => {
    const client = new OpenAI({ baseURL: `${up.url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 120_000 });
    // One replica to begin with (min 0 starts one); after idleToZero without requests, none.
    const idle = await up.waitForStatus(
      "zero replicas after the idle period",
      (status) => status.models[0]?.desired === 0 && status.models[0]?.replicas.length === 0,
      90_000,
    );
    expect(idle.models[0]?.ready).toBe(0);

    const started = Date.now();
    const completion = await client.completions.create({ model: "tiny", prompt: "Hello", max_tokens: 4 });
    const coldStartMs = Date.now() - started;
    expect(completion.choices).toHaveLength(1);
    const woken = await up.status();
    expect(woken.models[0]?.ready).toBe(1);

    const events = await up.berth(["events"]);
    expect(events.stdout).toMatch(/scale-to-zero/);
    expect(events.stdout).toMatch(/scale-from-zero/);
    console.log(`scale from zero: first request answered after ${coldStartMs} ms`);
  });

  it("leaves no replica behind when berth up itself is SIGKILLed", async () => {
    // A manual floor of 1 brings a replica back (and keeps it through the idle period).
    const scaled = await up.berth(["scale", "tiny", "1"]);
    expect(scaled.code, scaled.stderr).toBe(0);
    const status = await up.waitForStatus("one ready replica", (current) => current.models[0]?.ready === 1);
    const pids =
      status.models[0]?.replicas.map((replica) => replica.pid).filter((pid) => pid !== undefined) ?? [];
    expect(pids.length).toBeGreaterThan(0);
    await up.stop("SIGKILL");
    // Best effort by design (the replicas watch a pipe from their parent): bounded wait, then check.
    await waitFor(
      "replicas to exit after their parent died",
      async () => (pids.some((pid) => alive(pid as number)) ? undefined : true),
      30_000,
    );
    expect(pids.filter((pid) => alive(pid as number))).toEqual([]);
  });
});
