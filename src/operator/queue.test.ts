import { describe, expect, it } from "vitest";
import { backoffDelay, WorkQueue } from "./queue.js";

/** A promise and its resolver: lets a handler be held open until the test lets it go. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe("backoffDelay", () => {
  it("doubles per failure from the base, is capped, and adds at most the jitter fraction", () => {
    const none = () => 0;
    const most = () => 1;
    expect([1, 2, 3, 4].map((failures) => backoffDelay(failures, { baseMs: 100 }, none))).toEqual([
      100, 200, 400, 800,
    ]);
    expect(backoffDelay(30, { baseMs: 100, maxMs: 5000 }, none)).toBe(5000);
    expect(backoffDelay(1, { baseMs: 100, jitter: 0.2 }, most)).toBe(120);
    // Absurd failure counts do not overflow to Infinity.
    expect(backoffDelay(10_000, { baseMs: 100, maxMs: 5000 }, none)).toBe(5000);
  });
});

describe("WorkQueue", () => {
  it("coalesces a key added many times into one reconcile", async () => {
    const queue = new WorkQueue();
    const handled: string[] = [];
    const done = gate();
    for (let index = 0; index < 5; index++) queue.add("ns/a");
    queue.add("ns/b");
    queue.run(2, async (key) => {
      handled.push(key);
      if (handled.length === 2) done.open();
      return undefined;
    });
    await done.opened;
    await queue.stop();
    expect(handled.sort()).toEqual(["ns/a", "ns/b"]);
  });

  it("never runs one key twice at once; events during its reconcile run it once more afterwards", async () => {
    const queue = new WorkQueue();
    const first = gate();
    const second = gate();
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    queue.add("ns/a");
    queue.run(4, async () => {
      calls++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      if (calls === 1) {
        // Three more events while the first reconcile is in progress.
        queue.add("ns/a");
        queue.add("ns/a");
        queue.add("ns/a");
        first.open();
        await new Promise<void>((resolve) => setImmediate(resolve));
      } else second.open();
      running--;
      return undefined;
    });
    await first.opened;
    await second.opened;
    await queue.stop();
    expect({ calls, maxRunning }).toEqual({ calls: 2, maxRunning: 1 });
  });

  it("retries a failing key with backoff, counts failures, and forgets them after a success", async () => {
    const retries: Array<{ key: string; failures: number; retryInMs: number }> = [];
    const queue = new WorkQueue({
      baseMs: 1,
      jitter: 0,
      onError: (key, _error, retryInMs, failures) => retries.push({ key, failures, retryInMs }),
    });
    const succeeded = gate();
    let attempts = 0;
    queue.add("ns/flaky");
    queue.run(1, async () => {
      attempts++;
      if (attempts < 3) throw new Error("API server said no");
      succeeded.open();
      return undefined;
    });
    await succeeded.opened;
    await queue.stop();
    expect(retries).toEqual([
      { key: "ns/flaky", failures: 1, retryInMs: 1 },
      { key: "ns/flaky", failures: 2, retryInMs: 2 },
    ]);
    expect(queue.failures("ns/flaky")).toBe(0);
  });

  it("stop() drops pending retries and waits for the reconcile in progress", async () => {
    const queue = new WorkQueue();
    const started = gate();
    const release = gate();
    let finished = false;
    queue.add("ns/a");
    queue.run(1, async () => {
      started.open();
      await release.opened;
      finished = true;
      return { requeueAfterMs: 60_000 };
    });
    await started.opened;
    const stopping = queue.stop();
    release.open();
    await stopping;
    expect(finished).toBe(true);
    expect(queue.length).toBe(0);
  });
});
