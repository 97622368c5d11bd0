import { describe, expect, it } from "vitest";
import { MemoryDirectory, upstream } from "../../test/gateway/fixtures.js";
import { GatewayError } from "./errors.js";
import { ReadyWaiter } from "./hold.js";

const options = { maxHeldPerModel: 2, holdTimeoutMs: 60_000, retryAfterSeconds: 3 };

describe("ReadyWaiter", () => {
  it("passes at once when a replica is ready, without waking", async () => {
    const directory = new MemoryDirectory().addModel("m", {
      upstreams: [upstream("a", "http://127.0.0.1:1")],
    });
    const waiter = new ReadyWaiter(directory, options);
    await waiter.wait("m", new AbortController().signal);
    expect(directory.wakes).toEqual([]);
    waiter.close();
  });

  it("wakes the model and releases held requests when a replica turns ready", async () => {
    const directory = new MemoryDirectory().addModel("m").addModel("other");
    const held: string[] = [];
    const waiter = new ReadyWaiter(directory, options, {
      onHoldStart: (model) => held.push(`+${model}`),
      onHoldEnd: (model) => held.push(`-${model}`),
    });
    const first = waiter.wait("m", new AbortController().signal);
    const second = waiter.wait("m", new AbortController().signal);
    expect(directory.wakes).toEqual(["m", "m"]);
    expect(waiter.heldCount("m")).toBe(2);
    directory.setUpstreams("other", [upstream("o", "http://127.0.0.1:1", "other")]);
    directory.setUpstreams("m", [upstream("a", "http://127.0.0.1:1", "m", "starting")]);
    expect(waiter.heldCount("m")).toBe(2);
    directory.setState("m", "a", "ready");
    await Promise.all([first, second]);
    expect(waiter.heldCount("m")).toBe(0);
    expect(held).toEqual(["+m", "+m", "-m", "-m"]);
    waiter.close();
  });

  it("serves a wake that makes a replica ready synchronously", async () => {
    const directory = new MemoryDirectory().addModel("m");
    directory.onWake = () => directory.setUpstreams("m", [upstream("a", "http://127.0.0.1:1")]);
    const waiter = new ReadyWaiter(directory, options);
    await waiter.wait("m", new AbortController().signal);
    expect(waiter.heldCount("m")).toBe(0);
    waiter.close();
  });

  it("refuses beyond the bound with BERTH_HOLD_FULL and Retry-After", async () => {
    const directory = new MemoryDirectory().addModel("m");
    const waiter = new ReadyWaiter(directory, options);
    const held = [1, 2].map(() => waiter.wait("m", new AbortController().signal).catch((error) => error));
    await expect(waiter.wait("m", new AbortController().signal)).rejects.toMatchObject({
      code: "BERTH_HOLD_FULL",
      status: 503,
      options: { retryAfterSeconds: 3 },
    });
    waiter.close();
    for (const error of await Promise.all(held))
      expect(error).toMatchObject({ code: "BERTH_GATEWAY_DRAINING" });
  });

  it("gives up after the hold timeout with BERTH_NO_REPLICA", async () => {
    const directory = new MemoryDirectory().addModel("m");
    const waiter = new ReadyWaiter(directory, { ...options, holdTimeoutMs: 20 });
    const error = await waiter.wait("m", new AbortController().signal).catch((caught) => caught);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ code: "BERTH_NO_REPLICA", status: 503 });
    expect(waiter.heldCount("m")).toBe(0);
    waiter.close();
  });

  it("lets a request go when its client leaves", async () => {
    const directory = new MemoryDirectory().addModel("m");
    const waiter = new ReadyWaiter(directory, options);
    const controller = new AbortController();
    const pending = waiter.wait("m", controller.signal);
    const reason = new Error("client left");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(waiter.heldCount("m")).toBe(0);
    waiter.close();
  });
});
