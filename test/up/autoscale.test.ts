// Acceptance 4 with real processes: sustained concurrent load makes the autoscaler add replicas up
// to max, and once the load stops it scales back down (short windows in the test spec; the
// autoscaler's table tests cover the arithmetic).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { controllerEventSchema } from "../../src/control/admin-protocol.js";
import { type BerthUp, runLoad, specText, startBerthUp } from "./harness.js";

const SPEC = specText({
  replicas: "{ min: 1, max: 3 }",
  parallel: 2,
  autoscaling:
    "{ targetInFlight: 2, stableWindow: 6s, panicWindow: 2s, panicThreshold: 2, scaleDownDelay: 4s, idleToZero: 1h }",
});

describe("berth up: autoscaling", () => {
  let up: BerthUp;

  beforeAll(async () => {
    up = await startBerthUp(SPEC);
    await up.waitForStatus("one ready replica", (status) => status.models[0]?.ready === 1);
  }, 180_000);

  afterAll(async () => {
    await up?.cleanup();
  }, 120_000);

  it("adds replicas up to max under sustained load and removes them after it stops", async () => {
    let reachedMax = false;
    let mostDesired = 0;
    const watcher = (async () => {
      await up.waitForStatus(
        "three ready replicas under load",
        (status) => {
          mostDesired = Math.max(mostDesired, status.models[0]?.desired ?? 0);
          return status.models[0]?.ready === 3;
        },
        150_000,
      );
      reachedMax = true;
    })();
    const load = await runLoad({
      url: up.url,
      model: "tiny",
      total: 50,
      concurrency: 8,
      maxTokens: 24,
      until: () => reachedMax,
      maxTotal: 20_000,
    });
    await watcher;
    expect(load.failed, load.errors.join("\n")).toBe(0);
    expect(mostDesired).toBe(3);

    const scaledDown = await up.waitForStatus(
      "back to one replica after the load",
      (status) => status.models[0]?.replicas.length === 1 && status.models[0]?.ready === 1,
      90_000,
    );
    expect(scaledDown.models[0]?.desired).toBe(1);

    const result = await up.berth(["events", "--json"]);
    const events = controllerEventSchema.array().parse(JSON.parse(result.stdout));
    const decisions = events.filter((event) => event.type === "autoscale");
    const up3 = decisions.find((event) => event.inputs?.desired === 3);
    // Each decision carries what it was based on.
    expect(up3?.inputs).toMatchObject({ targetInFlight: 2, ceiling: 3 });
    expect(Number(up3?.inputs?.panicInFlight)).toBeGreaterThan(2);
    expect(
      decisions.some((event) => event.message.startsWith("scale-down") && event.inputs?.desired === 1),
    ).toBe(true);
    expect(Math.max(...decisions.map((event) => Number(event.inputs?.desired ?? 0)))).toBe(3);
    console.log(
      `autoscaling: ${load.ok} requests; decisions: ${decisions.map((event) => event.message).join(" | ")}`,
    );
  });
});
