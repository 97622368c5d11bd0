// The controller's reconcile logic against an in-memory runtime and a manual clock: replica
// counts, rolling updates (surge one, never fewer ready), draining before stop, wake from zero.
// The in-memory runtime stands in for processes so each step can be checked; test/up/ runs the
// same controller on the real local runtime.
import { describe, expect, it } from "vitest";
import type { LoadSnapshot, LoadSource } from "../gateway/directory.js";
import type { LogLine, ObservedReplica, ReplicaState, ReplicaTemplate, Runtime } from "../runtime/types.js";
import { type ModelDeployment, parseSpecText } from "../spec/index.js";
import { type Clock, Controller } from "./controller.js";

class ManualClock implements Clock {
  time = 1_000_000;
  #timers: Array<{ at: number; callback: () => void; id: number }> = [];
  #nextId = 1;
  now(): number {
    return this.time;
  }
  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.push({ at: this.time + ms, callback, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((timer) => timer.id !== handle);
  }
  /** Moves time forward, running due timers in order (and letting their promises settle). */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers[0];
      if (!next || next.at > until) break;
      this.#timers.shift();
      this.time = next.at;
      next.callback();
      await settle();
    }
    this.time = until;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Replicas as records; tests move them through states by hand. */
class MemoryRuntime implements Runtime {
  readonly kind = "memory";
  readonly replicas = new Map<string, ObservedReplica>();
  readonly stopped: string[] = [];
  #listeners = new Set<(replica: ObservedReplica) => void>();
  #count = 0;
  constructor(private readonly clock: Clock) {}
  async startReplica(template: ReplicaTemplate): Promise<ObservedReplica> {
    this.#count += 1;
    const replica: ObservedReplica = {
      id: `${template.deployment.metadata.name}-${this.#count}`,
      model: template.deployment.metadata.name,
      generation: template.generation,
      state: "starting",
      restarts: 0,
      createdAt: this.clock.now() + this.#count,
      startedAt: this.clock.now(),
    };
    this.replicas.set(replica.id, replica);
    this.#emit(replica);
    return { ...replica };
  }
  async stopReplica(id: string): Promise<void> {
    this.set(id, "stopped");
    this.replicas.delete(id);
    this.stopped.push(id);
  }
  listReplicas(): ObservedReplica[] {
    return [...this.replicas.values()].map((replica) => ({ ...replica }));
  }
  onChange(listener: (replica: ObservedReplica) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  async *logs(): AsyncIterable<LogLine> {}
  async close(): Promise<void> {
    for (const id of [...this.replicas.keys()]) await this.stopReplica(id);
  }
  set(id: string, state: ReplicaState): void {
    const replica = this.replicas.get(id);
    if (!replica) throw new Error(`no replica ${id}`);
    replica.state = state;
    replica.url = state === "ready" ? `http://127.0.0.1:${40000 + Number(id.split("-").at(-1))}` : undefined;
    this.#emit(replica);
  }
  #emit(replica: ObservedReplica): void {
    for (const listener of this.#listeners) listener({ ...replica });
  }
}

class FakeLoad implements LoadSource {
  inFlight = 0;
  held = 0;
  lastRequestAt = 0;
  perUpstream: Record<string, number> = {};
  load(model: string): LoadSnapshot {
    return {
      model,
      inFlight: this.inFlight,
      held: this.held,
      completed: 0,
      lastRequestAt: this.lastRequestAt,
      perUpstream: { ...this.perUpstream },
    };
  }
}

function deployment(replicas: string, extra = ""): ModelDeployment {
  const [parsed] = parseSpecText(`apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: m
spec:
  model:
    source: tiny://tiny
    servedName: served-m
  engine:
    parallel: 2
  replicas: ${replicas}
  autoscaling: { targetInFlight: 2, stableWindow: 10s, panicWindow: 2s, scaleDownDelay: 5s, idleToZero: 30s }
${extra}`);
  if (!parsed) throw new Error("no deployment");
  return parsed;
}

function setup(): { clock: ManualClock; runtime: MemoryRuntime; load: FakeLoad; controller: Controller } {
  const clock = new ManualClock();
  const runtime = new MemoryRuntime(clock);
  const load = new FakeLoad();
  const controller = new Controller({ runtime, clock, syncIntervalMs: 1000 });
  controller.setLoadSource(load);
  return { clock, runtime, load, controller };
}

const ids = (runtime: MemoryRuntime, state?: ReplicaState) =>
  runtime.listReplicas().filter((replica) => state === undefined || replica.state === state);

async function readyAll(runtime: MemoryRuntime): Promise<void> {
  for (const replica of ids(runtime, "starting")) runtime.set(replica.id, "ready");
  await settle();
}

describe("Controller", () => {
  it("starts the initial replicas and serves them as upstreams by served name", async () => {
    const { runtime, controller } = setup();
    controller.apply([
      { deployment: deployment("{ min: 1, max: 4, initial: 2 }"), resolvedModel: "/m.gguf" },
    ]);
    controller.start();
    await settle();
    expect(ids(runtime, "starting")).toHaveLength(2);
    expect(controller.models()).toEqual(["served-m"]);
    // Starting without an address: nothing the gateway could route to yet.
    expect(controller.upstreams("served-m")).toEqual([]);
    await readyAll(runtime);
    const upstreams = controller.upstreams("served-m");
    expect(
      upstreams.every((upstream) => upstream.state === "ready" && upstream.url.startsWith("http://")),
    ).toBe(true);
    const status = controller.status().models[0];
    expect(status).toMatchObject({ name: "m", servedName: "served-m", desired: 2, ready: 2, actual: 2 });
    expect(controller.events("m").map((event) => event.type)).toContain("replica-ready");
  });

  it("rolls out a spec change one at a time, never below the ready count, never above desired + 1", async () => {
    const { clock, runtime, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 2, max: 2 }") }]);
    controller.start();
    await settle();
    await readyAll(runtime);
    const original = ids(runtime).map((replica) => replica.id);

    let changes = 0;
    controller.onChange(() => {
      changes += 1;
      const upstreams = controller.upstreams("served-m");
      // The invariant a rolling update keeps at every observable step.
      expect(upstreams.filter((upstream) => upstream.state === "ready").length).toBeGreaterThanOrEqual(2);
      expect(upstreams.filter((upstream) => upstream.state !== "draining").length).toBeLessThanOrEqual(3);
    });
    const result = controller.apply([{ deployment: deployment("{ min: 2, max: 2 }", "  port: 9001") }]);
    const generation = controller.status().models[0]?.generation;
    expect(generation).toBe(2);
    expect(result.updated).toEqual(["m"]);
    await settle();
    for (let step = 0; step < 10 && ids(runtime).some((replica) => replica.generation === 1); step++) {
      expect(ids(runtime, "starting").length).toBeLessThanOrEqual(1);
      await readyAll(runtime);
      await clock.advance(100);
    }
    const final = ids(runtime);
    expect(final.map((replica) => replica.generation)).toEqual([2, 2]);
    expect(final.every((replica) => replica.state === "ready")).toBe(true);
    expect(runtime.stopped.sort()).toEqual(original.sort());
    expect(changes).toBeGreaterThan(0);
    const types = controller.events("m").map((event) => event.type);
    expect(types).toContain("rollout-started");
    expect(types).toContain("rollout-finished");
  });

  it("takes a retired replica out of rotation and stops it only once its in-flight requests finish", async () => {
    const { clock, runtime, load, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 2, max: 2 }") }]);
    controller.start();
    await settle();
    await readyAll(runtime);
    const [first, second] = ids(runtime);
    if (!first || !second) throw new Error("two replicas expected");
    // Both busy: whichever is retired must wait for its request.
    load.perUpstream = { [first.id]: 1, [second.id]: 1 };
    controller.scale("m", 1);
    // The autoscaler lowers desired to the floor after scaleDownDelay (5 s).
    await clock.advance(6000);
    const retired = controller.upstreams("served-m").find((upstream) => upstream.state === "draining");
    expect(retired).toBeDefined();
    await clock.advance(5000);
    expect(runtime.stopped).toEqual([]);
    expect(controller.status().models[0]?.replicas.find((replica) => replica.id === retired?.id)?.state).toBe(
      "draining",
    );
    load.perUpstream = { [first.id === retired?.id ? second.id : first.id]: 1 };
    await clock.advance(200);
    expect(runtime.stopped).toEqual([retired?.id]);
  });

  it("wakes a model at zero replicas when the gateway holds a request", async () => {
    const { runtime, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 0, max: 2, initial: 0 }") }]);
    controller.start();
    await settle();
    expect(ids(runtime)).toHaveLength(0);
    controller.wake("served-m");
    await settle();
    expect(ids(runtime, "starting")).toHaveLength(1);
    expect(controller.events("m").some((event) => event.message.startsWith("scale-from-zero"))).toBe(true);
  });

  it("scales to zero after idleToZero and records why", async () => {
    const { clock, runtime, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 0, max: 2 }") }]);
    controller.start();
    await settle();
    await readyAll(runtime);
    expect(ids(runtime, "ready")).toHaveLength(1);
    await clock.advance(31_000);
    expect(ids(runtime)).toHaveLength(0);
    const zero = controller.events("m").find((event) => event.message.startsWith("scale-to-zero"));
    expect(zero?.inputs).toMatchObject({ desired: 0, floor: 0 });
  });

  it("adds replicas under load up to max and removes them after the load and the delay", async () => {
    const { clock, runtime, load, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 1, max: 3 }") }]);
    controller.start();
    await settle();
    await readyAll(runtime);
    load.inFlight = 12;
    load.lastRequestAt = clock.now();
    for (let second = 0; second < 5; second++) {
      await clock.advance(1000);
      await readyAll(runtime);
    }
    expect(ids(runtime, "ready")).toHaveLength(3);
    expect(controller.status().models[0]?.desired).toBe(3);
    load.inFlight = 0;
    await clock.advance(30_000);
    expect(ids(runtime)).toHaveLength(1);
  });

  it("applies a change of replica counts in place, without a rollout", async () => {
    const { runtime, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 2, max: 2 }") }]);
    controller.start();
    await settle();
    await readyAll(runtime);
    const result = controller.apply([{ deployment: deployment("{ min: 3, max: 3 }") }]);
    await settle();
    expect(result.updated).toEqual(["m"]);
    expect(controller.status().models[0]?.generation).toBe(1);
    expect(ids(runtime).map((replica) => replica.generation)).toEqual([1, 1, 1]);
  });

  it("keeps a manual floor and reports it", async () => {
    const { runtime, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 1, max: 2 }") }]);
    controller.start();
    await settle();
    controller.scale("served-m", 3);
    await settle();
    expect(ids(runtime)).toHaveLength(3);
    expect(controller.status().models[0]).toMatchObject({ manualFloor: 3, min: 3, max: 3, desired: 3 });
    expect(() => controller.scale("nope", 1)).toThrow(/no model "nope"/);
  });

  it("retires every replica of a model removed from the spec, then forgets it", async () => {
    const { runtime, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 2, max: 2 }") }]);
    controller.start();
    await settle();
    await readyAll(runtime);
    const result = controller.apply([]);
    expect(result.removed).toEqual(["m"]);
    expect(controller.models()).toEqual([]);
    await settle();
    expect(ids(runtime)).toHaveLength(0);
    expect(controller.status().models).toEqual([]);
  });
});

describe("Controller availability (what the gateway fails fast on)", () => {
  it("reports a model unavailable only while every replica crash-loops, relaunches included", async () => {
    const { runtime, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 2, max: 2 }") }]);
    controller.start();
    await settle();
    const [first, second] = ids(runtime).map((replica) => replica.id);
    if (!first || !second) throw new Error("two replicas expected");
    // Starting and restarting may still end ready: the gateway holds.
    expect(controller.unavailable("served-m")).toBeUndefined();
    runtime.set(first, "crash-looping");
    runtime.set(second, "restarting");
    expect(controller.unavailable("served-m")).toBeUndefined();
    const replica = runtime.replicas.get(second);
    if (replica) {
      replica.message = "exited with code 1; restart 3 in 2000 ms";
      replica.lastLogLines = ["loading model", "error: failed to load model", ""];
    }
    runtime.set(second, "crash-looping");
    const unavailable = controller.unavailable("served-m");
    expect(unavailable?.reason).toContain("crash-looping");
    // A crash-looping replica relaunching is still one that crash-loops.
    runtime.set(first, "starting");
    runtime.set(second, "starting");
    expect(controller.unavailable("served-m")?.reason).toContain("crash-looping");
    expect(controller.status().models[0]).toMatchObject({ available: false });
    expect(controller.status().models[0]?.unavailableReason).toContain("crash-looping");
    // One ready replica and the model serves again.
    runtime.set(first, "ready");
    expect(controller.unavailable("served-m")).toBeUndefined();
    expect(controller.status().models[0]).toMatchObject({ available: true });
  });

  it("takes an unresponsive replica out of rotation and counts it as not ready", async () => {
    const { runtime, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 1, max: 1 }") }]);
    controller.start();
    await settle();
    await readyAll(runtime);
    const [replica] = ids(runtime);
    if (!replica) throw new Error("one replica expected");
    expect(controller.upstreams("served-m")[0]?.state).toBe("ready");
    const stored = runtime.replicas.get(replica.id);
    if (!stored) throw new Error("replica missing");
    // The local runtime keeps an unresponsive replica's address: it may come back.
    stored.state = "unresponsive";
    expect(controller.upstreams("served-m")[0]?.state).toBe("starting");
    expect(controller.status().models[0]?.ready).toBe(0);
  });
});

describe("Controller: a model that cannot be had (failed pull or model check)", () => {
  const failure = { code: "BERTH_MODEL_SOURCE_NOT_FOUND", message: "s3://models/nope.gguf: no object" };
  const other = (): ModelDeployment => {
    const [parsed] = parseSpecText(`apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: other }
spec:
  model: { source: tiny://tiny }
  replicas: { min: 1, max: 1 }
`);
    if (!parsed) throw new Error("no deployment");
    return parsed;
  };

  it("starts no replica for it, says why in status, events and unavailable(); other models run", async () => {
    const { runtime, controller } = setup();
    controller.apply([
      { deployment: deployment("{ min: 2, max: 2 }"), modelFailure: failure },
      { deployment: other(), resolvedModel: "/other.gguf" },
    ]);
    controller.start();
    await settle();
    await readyAll(runtime);
    expect(ids(runtime).map((replica) => replica.model)).toEqual(["other"]);
    expect(controller.unavailable("served-m")).toEqual({ reason: failure.message });
    expect(controller.unavailable("other")).toBeUndefined();
    const status = controller.status().models.find((model) => model.name === "m");
    expect(status).toMatchObject({ desired: 0, available: false, failure });
    expect(controller.status().models.find((model) => model.name === "other")?.failure).toBeUndefined();
    const failed = controller.events("m").filter((event) => event.type === "model-failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]?.message).toBe(failure.message);
    expect(failed[0]?.inputs).toEqual({ code: failure.code });
  });

  it("a later apply that resolves it starts its replicas and clears the failure", async () => {
    const { runtime, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 1, max: 1 }"), modelFailure: failure }]);
    controller.start();
    await settle();
    expect(ids(runtime)).toHaveLength(0);
    const result = controller.apply([
      { deployment: deployment("{ min: 1, max: 1 }"), resolvedModel: "/m.gguf" },
    ]);
    expect(result.updated).toEqual(["m"]);
    await settle();
    await readyAll(runtime);
    expect(ids(runtime, "ready")).toHaveLength(1);
    expect(controller.status().models[0]?.failure).toBeUndefined();
    expect(controller.unavailable("served-m")).toBeUndefined();
  });

  it("a running model whose new source fails keeps its running generation (and records why)", async () => {
    const { runtime, controller } = setup();
    controller.apply([{ deployment: deployment("{ min: 1, max: 1 }"), resolvedModel: "/m.gguf" }]);
    controller.start();
    await settle();
    await readyAll(runtime);
    const result = controller.apply([
      { deployment: deployment("{ min: 1, max: 1 }", "  port: 9001"), modelFailure: failure },
    ]);
    expect(result.unchanged).toEqual(["m"]);
    await settle();
    expect(ids(runtime, "ready").map((replica) => replica.generation)).toEqual([1]);
    expect(controller.unavailable("served-m")).toBeUndefined();
    const failed = controller.events("m").filter((event) => event.type === "model-failed");
    expect(failed.at(-1)?.message).toBe(`${failure.message} (generation 1 keeps running)`);
  });
});
