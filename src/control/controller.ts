// The controller: reconciles each model's desired replicas (spec, autoscaler, manual floor) with
// the replicas a runtime reports, rolls out spec changes, and serves the gateway's directory.
//
// Rolling update (maxSurge 1, maxUnavailable 0): start one replica of the new generation, and
// retire an old one only when the ready count without it still reaches the desired count. A
// retired replica first leaves rotation (state "draining" in the directory, so the gateway stops
// routing to it), then its in-flight requests finish (or a timeout passes), then the runtime stops
// it (SIGTERM: the server drains whatever is left). Scale-down retires replicas the same way.
// Timers live here, behind an injected clock; the decisions (autoscaler) are pure.
import type {
  LoadSnapshot,
  LoadSource,
  ModelUnavailable,
  Upstream,
  UpstreamDirectory,
  UpstreamState,
} from "../gateway/directory.js";
import type { ObservedReplica, ReplicaState, Runtime } from "../runtime/types.js";
import type { ModelDeployment } from "../spec/index.js";
import { servedName } from "../spec/index.js";
import type { Logger } from "../util/log.js";
import {
  type AutoscalerEvent,
  type AutoscalerState,
  decideReplicas,
  type LoadObservation,
  replicaBounds,
} from "./autoscaler.js";

export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface ControllerOptions {
  runtime: Runtime;
  logger?: Logger;
  clock?: Clock;
  /** Load sampling and reconcile period. Default 1 s. */
  syncIntervalMs?: number;
  /** Longest wait for a retired replica's in-flight requests before it is stopped anyway. Default 60 s. */
  drainTimeoutMs?: number;
  /** SIGTERM → kill grace given to the runtime. Default: the runtime's. */
  stopGraceMs?: number;
  /** Events kept (ring buffer). Default 1000. */
  maxEvents?: number;
}

export interface DeploymentToApply {
  deployment: ModelDeployment;
  /** The model source resolved on this machine (passed through to the runtime). */
  resolvedModel?: string;
  /**
   * The model could not be had (pull failed, model check refused it): the model gets no replicas,
   * the gateway answers 503 with this message, status and events say so. Other models are unaffected.
   */
  modelFailure?: ModelFailure;
}

/** Why a model cannot run at all (see /work/coord/up-model-resolve.md): a stable code and one line. */
export interface ModelFailure {
  code: string;
  message: string;
}

export interface ApplyResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
}

export type ControllerEventType =
  | "autoscale"
  | "scale-manual"
  | "apply"
  | "rollout-started"
  | "rollout-finished"
  | "replica-starting"
  | "replica-ready"
  | "replica-restarting"
  | "replica-crash-looping"
  | "replica-unresponsive"
  | "replica-draining"
  | "replica-stopped"
  | "model-failed";

export interface ControllerEvent {
  seq: number;
  at: number;
  model: string;
  type: ControllerEventType;
  replica?: string;
  message: string;
  /** What the decision was based on (autoscaler inputs, exit codes, last log lines). */
  inputs?: Record<string, unknown>;
}

export interface ReplicaStatus {
  id: string;
  generation: number;
  /** Runtime state, or "draining" once the controller took it out of rotation. */
  state: ReplicaState;
  url?: string;
  port?: number;
  pid?: number;
  inFlight: number;
  restarts: number;
  uptimeMs: number;
  message?: string;
  lastLogLines?: string[];
}

export interface ModelStatus {
  name: string;
  servedName: string;
  generation: number;
  desired: number;
  ready: number;
  /** Replicas that count toward desired (not being retired). */
  actual: number;
  min: number;
  max: number;
  manualFloor?: number;
  autoscaling: { enabled: boolean; panicking: boolean; lastDecision?: AutoscalerEvent };
  rollout?: { toGeneration: number; startedAt: number };
  inFlight: number;
  /** False while no replica can become ready (every one crash-looping): the gateway answers 503 at once. */
  available: boolean;
  unavailableReason?: string;
  /** Set when the model could not be had at all (no replica is started). */
  failure?: ModelFailure;
  replicas: ReplicaStatus[];
}

export interface ControllerStatus {
  runtime: string;
  models: ModelStatus[];
}

interface ModelEntry {
  deployment: ModelDeployment;
  resolvedModel?: string;
  modelFailure?: ModelFailure;
  generation: number;
  desired: number;
  manualFloor?: number;
  autoscaler?: AutoscalerState;
  lastDecision?: AutoscalerEvent;
  observations: LoadObservation[];
  /** A request is held for this model (gateway wake) since the last decision. */
  waiting: boolean;
  rollout?: { toGeneration: number; startedAt: number };
  /** Dropped from the spec: retire every replica, then forget the model. */
  removed: boolean;
}

const EMPTY_LOAD: Omit<LoadSnapshot, "model"> = {
  inFlight: 0,
  held: 0,
  completed: 0,
  lastRequestAt: 0,
  perUpstream: {},
};

export class Controller implements UpstreamDirectory {
  readonly #runtime: Runtime;
  readonly #logger?: Logger;
  readonly #clock: Clock;
  readonly #syncIntervalMs: number;
  readonly #drainTimeoutMs: number;
  readonly #stopGraceMs?: number;
  readonly #maxEvents: number;
  readonly #models = new Map<string, ModelEntry>();
  /** Replicas taken out of rotation by the controller, being drained and stopped. */
  readonly #retiring = new Map<string, { since: number }>();
  readonly #listeners = new Set<() => void>();
  readonly #events: ControllerEvent[] = [];
  readonly #lastSeenState = new Map<string, ReplicaState>();
  /**
   * Replicas that reached crash-looping and have not been ready since: a relaunch ("starting")
   * does not make the model available again, only a replica that becomes ready does.
   */
  readonly #crashLooping = new Set<string>();
  #seq = 0;
  #loadSource?: LoadSource;
  #timer: unknown;
  #running = false;
  #stopping = false;
  #reconciling: Promise<void> | undefined;
  #again = false;
  readonly #unsubscribeRuntime: () => void;

  constructor(options: ControllerOptions) {
    this.#runtime = options.runtime;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
    this.#syncIntervalMs = options.syncIntervalMs ?? 1000;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 60_000;
    this.#stopGraceMs = options.stopGraceMs;
    this.#maxEvents = options.maxEvents ?? 1000;
    this.#unsubscribeRuntime = this.#runtime.onChange((replica) => this.#onReplicaChange(replica));
  }

  // ---- UpstreamDirectory (what the gateway reads) ----

  models(): string[] {
    return [...this.#models.values()]
      .filter((entry) => !entry.removed)
      .map((entry) => servedName(entry.deployment));
  }

  deployment(model: string): ModelDeployment | undefined {
    return this.#entryByServedName(model)?.[1].deployment;
  }

  upstreams(model: string): readonly Upstream[] {
    const found = this.#entryByServedName(model);
    if (!found) return [];
    const [name] = found;
    return (
      this.#runtime
        .listReplicas()
        // A replica without an address yet (process starting) is nothing the gateway can use.
        .filter(
          (replica) => replica.model === name && replica.state !== "stopped" && replica.url !== undefined,
        )
        .map((replica) => ({
          id: replica.id,
          model,
          url: replica.url ?? "",
          state: this.#upstreamState(replica),
          generation: replica.generation,
        }))
    );
  }

  wake(model: string): void {
    const found = this.#entryByServedName(model);
    if (!found || this.#stopping) return;
    const [, entry] = found;
    if (entry.waiting) return;
    entry.waiting = true;
    this.kick();
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  unavailable(model: string): ModelUnavailable | undefined {
    const found = this.#entryByServedName(model);
    if (!found) return undefined;
    const [name, entry] = found;
    if (entry.modelFailure) return { reason: entry.modelFailure.message };
    const current = this.#replicasOf(name).filter((replica) => !this.#isRetiring(replica));
    if (current.length === 0 || current.some((replica) => replica.state === "ready")) return undefined;
    // A replica starting for the first time (or restarting after one or two failures) may still
    // become ready: hold. Only when every one has crash-looped is waiting pointless.
    if (!current.every((replica) => this.#crashLooping.has(replica.id))) return undefined;
    const first = current[0]!;
    const lastLine = [...(first.lastLogLines ?? [])].reverse().find((line) => line.trim().length > 0);
    const said = lastLine === undefined ? "" : `; its last log line: ${lastLine.trim().slice(0, 300)}`;
    return {
      reason: `every replica of model "${name}" is crash-looping (${first.id} ${first.message ?? "keeps exiting"}${said})`,
    };
  }

  // ---- Control ----

  /** The gateway's load, sampled every sync period for the autoscaler. */
  setLoadSource(source: LoadSource): void {
    this.#loadSource = source;
  }

  /** Adds, updates (rolling update to a new generation) and removes models. */
  apply(deployments: readonly DeploymentToApply[]): ApplyResult {
    const result: ApplyResult = { created: [], updated: [], unchanged: [], removed: [] };
    const names = new Set(deployments.map((item) => item.deployment.metadata.name));
    for (const item of deployments) {
      const name = item.deployment.metadata.name;
      const entry = this.#models.get(name);
      if (!entry || entry.removed) {
        this.#models.set(name, {
          deployment: item.deployment,
          resolvedModel: item.resolvedModel,
          ...(item.modelFailure ? { modelFailure: item.modelFailure } : {}),
          generation: (entry?.generation ?? 0) + 1,
          desired: 0,
          observations: entry?.observations ?? [],
          waiting: false,
          removed: false,
        });
        result.created.push(name);
        this.#record(name, "apply", `model ${name} added (generation ${(entry?.generation ?? 0) + 1})`);
        if (item.modelFailure) this.#recordModelFailure(name, item.modelFailure);
        continue;
      }
      if (item.modelFailure && !entry.modelFailure) {
        // The running version stays: a new source that cannot be had must not take down one that works.
        this.#recordModelFailure(name, item.modelFailure, ` (generation ${entry.generation} keeps running)`);
        result.unchanged.push(name);
        continue;
      }
      if (JSON.stringify(entry.deployment) === JSON.stringify(item.deployment)) {
        if (
          entry.resolvedModel === item.resolvedModel &&
          entry.modelFailure?.message === item.modelFailure?.message
        ) {
          result.unchanged.push(name);
          continue;
        }
      }
      const rolling =
        replicaTemplateKey(entry.deployment) !== replicaTemplateKey(item.deployment) ||
        entry.resolvedModel !== item.resolvedModel;
      entry.deployment = item.deployment;
      entry.resolvedModel = item.resolvedModel;
      if (item.modelFailure) {
        entry.modelFailure = item.modelFailure;
        this.#recordModelFailure(name, item.modelFailure);
      } else {
        delete entry.modelFailure;
      }
      result.updated.push(name);
      if (rolling) {
        entry.generation += 1;
        this.#record(name, "apply", `replica spec changed: rolling update to generation ${entry.generation}`);
      } else {
        // Replica counts, autoscaling, routing, auth: applied in place, no replica restarts.
        this.#record(name, "apply", "spec changed (no replica restart needed)");
      }
    }
    for (const [name, entry] of this.#models) {
      if (!names.has(name) && !entry.removed) {
        entry.removed = true;
        result.removed.push(name);
        this.#record(name, "apply", `model ${name} removed from the spec: retiring its replicas`);
      }
    }
    this.#notify();
    this.kick();
    return result;
  }

  /** `berth scale`: a manual floor for a model (replaces replicas.min); undefined clears it. */
  scale(model: string, floor: number | undefined): void {
    const found = this.#entryByName(model);
    if (!found) throw new ControllerError("BERTH_MODEL_NOT_FOUND", `no model "${model}"`);
    const [name, entry] = found;
    entry.manualFloor = floor;
    this.#record(
      name,
      "scale-manual",
      floor === undefined ? "manual floor cleared: back to the spec" : `manual floor set to ${floor}`,
      { floor: floor ?? null },
    );
    this.kick();
  }

  /** Starts the sync loop (sample load, decide, reconcile) and runs the first pass now. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.tick();
  }

  /** One sync period: sample the gateway's load, then decide and reconcile. */
  tick(): Promise<void> {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = this.#clock.now();
    for (const entry of this.#models.values()) {
      const load = this.#load(entry);
      entry.observations.push({ at: now, inFlight: load.inFlight });
      const keepFrom = now - entry.deployment.spec.autoscaling.stableWindow;
      while ((entry.observations[0]?.at ?? now) <= keepFrom) entry.observations.shift();
    }
    const pass = this.kick();
    if (this.#running && !this.#stopping) {
      this.#timer = this.#clock.setTimeout(() => void this.tick(), this.#syncIntervalMs);
    }
    return pass;
  }

  /** Decide and reconcile now (after a wake, an apply, a replica change); passes never overlap. */
  kick(): Promise<void> {
    // Nothing runs before start(): the gateway reads the directory (auth checks) before replicas exist.
    if (this.#stopping || !this.#running) return Promise.resolve();
    if (this.#reconciling) {
      this.#again = true;
      return this.#reconciling;
    }
    // Set before the pass begins: runtime callbacks during the pass's synchronous part kick again.
    let finished!: () => void;
    this.#reconciling = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const pass = this.#reconciling;
    void (async () => {
      try {
        do {
          this.#again = false;
          await this.#reconcileAll();
        } while (this.#again && !this.#stopping);
      } catch (error) {
        this.#logger?.error({ err: error }, "reconcile failed");
      } finally {
        this.#reconciling = undefined;
        finished();
      }
    })();
    return pass;
  }

  /** Stops the loop, takes every replica out of rotation, waits for in-flight work, stops them all. */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#reconciling;
    const replicas = this.#runtime.listReplicas().filter((replica) => replica.state !== "stopped");
    await Promise.all(replicas.map((replica) => this.#retire(replica, "shutdown")));
    await this.#runtime.close(this.#stopGraceMs === undefined ? {} : { graceMs: this.#stopGraceMs });
    this.#unsubscribeRuntime();
  }

  status(): ControllerStatus {
    const now = this.#clock.now();
    const replicas = this.#runtime.listReplicas();
    const models: ModelStatus[] = [];
    for (const [name, entry] of this.#models) {
      const load = this.#load(entry);
      const mine = replicas.filter((replica) => replica.model === name && replica.state !== "stopped");
      const { floor, ceiling } = replicaBounds(entry.deployment.spec, entry.manualFloor);
      const unavailable = entry.removed ? undefined : this.unavailable(servedName(entry.deployment));
      models.push({
        name,
        servedName: servedName(entry.deployment),
        generation: entry.generation,
        desired: entry.desired,
        ready: mine.filter((replica) => this.#upstreamState(replica) === "ready").length,
        actual: mine.filter((replica) => !this.#isRetiring(replica)).length,
        min: floor,
        max: ceiling,
        manualFloor: entry.manualFloor,
        autoscaling: {
          enabled: entry.deployment.spec.autoscaling.enabled,
          panicking: entry.autoscaler?.panicSince !== undefined,
          lastDecision: entry.lastDecision,
        },
        rollout: entry.rollout,
        inFlight: load.inFlight,
        available: unavailable === undefined,
        ...(unavailable === undefined ? {} : { unavailableReason: unavailable.reason }),
        ...(entry.modelFailure && !entry.removed ? { failure: { ...entry.modelFailure } } : {}),
        replicas: mine.map((replica) => ({
          id: replica.id,
          generation: replica.generation,
          state: this.#isRetiring(replica) ? "draining" : replica.state,
          url: replica.url,
          port: replica.port,
          pid: replica.pid,
          inFlight: load.perUpstream[replica.id] ?? 0,
          restarts: replica.restarts,
          uptimeMs: replica.state === "ready" || replica.state === "draining" ? now - replica.startedAt : 0,
          message: replica.message,
          lastLogLines: replica.state === "crash-looping" ? replica.lastLogLines : undefined,
        })),
      });
    }
    return { runtime: this.#runtime.kind, models };
  }

  #recordModelFailure(name: string, failure: ModelFailure, note = ""): void {
    this.#record(name, "model-failed", `${failure.message}${note}`, { code: failure.code });
    this.#notify();
  }

  events(model?: string): ControllerEvent[] {
    return model === undefined ? [...this.#events] : this.#events.filter((event) => event.model === model);
  }

  /** Finds a model by metadata.name or served name. */
  modelName(model: string): string | undefined {
    return this.#entryByName(model)?.[0];
  }

  // ---- Reconcile ----

  async #reconcileAll(): Promise<void> {
    for (const [name, entry] of [...this.#models]) {
      if (this.#stopping) return;
      this.#decide(name, entry);
      await this.#reconcileModel(name, entry);
    }
  }

  #decide(name: string, entry: ModelEntry): void {
    const now = this.#clock.now();
    if (entry.removed || entry.modelFailure) {
      entry.desired = 0;
      return;
    }
    const load = this.#load(entry);
    const ready = this.#replicasOf(name).filter((replica) => this.#upstreamState(replica) === "ready").length;
    const decision = decideReplicas({
      observations: entry.observations,
      readyReplicas: ready,
      spec: entry.deployment.spec,
      previous: entry.autoscaler,
      now,
      lastRequestAt: load.lastRequestAt,
      waiting: entry.waiting || load.held > 0,
      manualFloor: entry.manualFloor,
    });
    entry.waiting = false;
    const changed = decision.desired !== entry.desired || entry.autoscaler === undefined;
    // "Still waiting to scale down" is recorded once when it begins, not every period.
    const newReason = decision.event.reason !== entry.lastDecision?.reason;
    const quiet = decision.event.reason === "steady" || decision.event.reason === "scale-down-delayed";
    if (changed || (newReason && !quiet) || (newReason && decision.event.reason === "scale-down-delayed")) {
      this.#record(name, "autoscale", `${decision.event.reason}: ${decision.event.message}`, {
        desired: decision.desired,
        ...decision.event.inputs,
      });
    }
    entry.autoscaler = decision.state;
    entry.lastDecision = decision.event;
    entry.desired = decision.desired;
  }

  async #reconcileModel(name: string, entry: ModelEntry): Promise<void> {
    const desired = entry.desired;
    const load = this.#load(entry);
    const active = this.#replicasOf(name).filter((replica) => !this.#isRetiring(replica));
    const current = active.filter((replica) => replica.generation === entry.generation);
    const outdated = active.filter((replica) => replica.generation !== entry.generation);
    const isReady = (replica: ObservedReplica) => replica.state === "ready";
    const readyCount = active.filter(isReady).length;
    const starts: Array<Promise<unknown>> = [];

    if (outdated.length > 0) {
      if (!entry.rollout) {
        entry.rollout = { toGeneration: entry.generation, startedAt: this.#clock.now() };
        this.#record(name, "rollout-started", `rolling update to generation ${entry.generation}`, {
          outdated: outdated.map((replica) => replica.id),
          desired,
        });
      }
      // Outdated replicas that serve nothing can go at once: no ready capacity is lost.
      const notServing = outdated.filter((replica) => !isReady(replica));
      for (const replica of notServing) void this.#retire(replica, "rollout");
      const servingOutdated = outdated.filter(isReady);
      if (current.length > desired) {
        for (const replica of pickToRetire(current, current.length - desired, load.perUpstream)) {
          void this.#retire(replica, "scale-down");
        }
      } else if (current.length < desired && current.length + servingOutdated.length < desired + 1) {
        // Surge one: never more than desired + 1 replicas while rolling.
        starts.push(this.#startReplica(name, entry));
      }
      // An old replica leaves only if the ready count without it still reaches desired.
      let ready = readyCount;
      for (const replica of pickToRetire(servingOutdated, servingOutdated.length, load.perUpstream)) {
        if (ready - 1 < desired) break;
        void this.#retire(replica, "rollout");
        ready -= 1;
      }
    } else {
      if (entry.rollout) {
        this.#record(name, "rollout-finished", `every replica runs generation ${entry.generation}`, {
          tookMs: this.#clock.now() - entry.rollout.startedAt,
        });
        entry.rollout = undefined;
      }
      if (current.length < desired) {
        for (let count = current.length; count < desired; count++)
          starts.push(this.#startReplica(name, entry));
      } else if (current.length > desired) {
        for (const replica of pickToRetire(current, current.length - desired, load.perUpstream)) {
          void this.#retire(replica, desired === 0 ? "scale-to-zero" : "scale-down");
        }
      }
    }
    await Promise.all(starts);
    if (entry.removed && this.#replicasOf(name).length === 0) {
      this.#models.delete(name);
      this.#notify();
    }
  }

  async #startReplica(name: string, entry: ModelEntry): Promise<void> {
    try {
      const replica = await this.#runtime.startReplica({
        deployment: entry.deployment,
        generation: entry.generation,
        resolvedModel: entry.resolvedModel,
      });
      this.#logger?.info(
        { model: name, replica: replica.id, generation: entry.generation },
        "replica created",
      );
    } catch (error) {
      this.#logger?.error({ err: error, model: name }, "could not start a replica");
    }
  }

  /** Out of rotation now; stopped once the gateway has nothing in flight on it (or after the timeout). */
  async #retire(replica: ObservedReplica, reason: string): Promise<void> {
    if (this.#retiring.has(replica.id)) return;
    const since = this.#clock.now();
    this.#retiring.set(replica.id, { since });
    this.#record(replica.model, "replica-draining", `${replica.id} leaves rotation (${reason})`, {
      reason,
      generation: replica.generation,
    });
    this.#notify();
    const entry = this.#models.get(replica.model);
    while (entry && this.#clock.now() - since < this.#drainTimeoutMs) {
      const inFlight = this.#load(entry).perUpstream[replica.id] ?? 0;
      if (inFlight === 0) break;
      await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, 50));
    }
    try {
      await this.#runtime.stopReplica(
        replica.id,
        this.#stopGraceMs === undefined ? {} : { graceMs: this.#stopGraceMs },
      );
    } finally {
      this.#retiring.delete(replica.id);
      this.#notify();
      if (!this.#stopping) void this.kick();
    }
  }

  #onReplicaChange(replica: ObservedReplica): void {
    const before = this.#lastSeenState.get(replica.id);
    if (before !== replica.state) {
      const event = replicaEvent(replica);
      if (event) this.#record(replica.model, event.type, event.message, event.inputs);
      if (replica.state === "stopped") this.#lastSeenState.delete(replica.id);
      else this.#lastSeenState.set(replica.id, replica.state);
      if (replica.state === "crash-looping") this.#crashLooping.add(replica.id);
      else if (replica.state === "ready" || replica.state === "stopped")
        this.#crashLooping.delete(replica.id);
    }
    this.#notify();
    // A replica that became ready or died can unblock a rollout or a scale step.
    if (!this.#stopping && before !== replica.state) void this.kick();
  }

  // ---- Helpers ----

  #replicasOf(name: string): ObservedReplica[] {
    return this.#runtime
      .listReplicas()
      .filter((replica) => replica.model === name && replica.state !== "stopped");
  }

  #isRetiring(replica: ObservedReplica): boolean {
    return this.#retiring.has(replica.id) || replica.state === "draining";
  }

  #upstreamState(replica: ObservedReplica): UpstreamState {
    if (this.#isRetiring(replica)) return "draining";
    switch (replica.state) {
      case "ready":
        return "ready";
      case "starting":
      case "restarting":
      case "unresponsive":
        return "starting";
      case "crash-looping":
        return "failed";
      case "draining":
        return "draining";
      case "stopped":
        return "stopped";
    }
  }

  #load(entry: ModelEntry): LoadSnapshot {
    const model = servedName(entry.deployment);
    return this.#loadSource?.load(model) ?? { model, ...EMPTY_LOAD };
  }

  #entryByServedName(model: string): [string, ModelEntry] | undefined {
    for (const [name, entry] of this.#models) {
      if (!entry.removed && servedName(entry.deployment) === model) return [name, entry];
    }
    return undefined;
  }

  #entryByName(model: string): [string, ModelEntry] | undefined {
    const entry = this.#models.get(model);
    if (entry && !entry.removed) return [model, entry];
    return this.#entryByServedName(model);
  }

  #record(model: string, type: ControllerEventType, message: string, inputs?: Record<string, unknown>): void {
    this.#seq += 1;
    const event: ControllerEvent = { seq: this.#seq, at: this.#clock.now(), model, type, message };
    if (inputs) event.inputs = inputs;
    this.#events.push(event);
    if (this.#events.length > this.#maxEvents) this.#events.splice(0, this.#events.length - this.#maxEvents);
    this.#logger?.info({ model, event: type, inputs }, message);
  }

  #notify(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (error) {
        this.#logger?.error({ err: error }, "directory listener failed");
      }
    }
  }
}

export type ControllerErrorCode = "BERTH_MODEL_NOT_FOUND";

export class ControllerError extends Error {
  constructor(
    readonly code: ControllerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ControllerError";
  }
}

/**
 * The parts of a deployment a replica is made from: a change here needs new replicas (a rolling
 * update); anything else (replicas, autoscaling, routing, auth, service) applies in place.
 */
export function replicaTemplateKey(deployment: ModelDeployment): string {
  const { model, engine, port, resources, kubernetes } = deployment.spec;
  const { labels, annotations } = deployment.metadata;
  return JSON.stringify({ model, engine, port, resources, kubernetes, labels, annotations });
}

/** Which replicas a scale-down retires: those not serving first, then the least busy, newest first. */
export function pickToRetire(
  replicas: readonly ObservedReplica[],
  count: number,
  inFlight: Readonly<Record<string, number>>,
): ObservedReplica[] {
  const rank = (replica: ObservedReplica) => (replica.state === "ready" ? 1 : 0);
  return [...replicas]
    .sort(
      (a, b) =>
        rank(a) - rank(b) || (inFlight[a.id] ?? 0) - (inFlight[b.id] ?? 0) || b.createdAt - a.createdAt,
    )
    .slice(0, Math.max(0, count));
}

function replicaEvent(
  replica: ObservedReplica,
): { type: ControllerEventType; message: string; inputs?: Record<string, unknown> } | undefined {
  switch (replica.state) {
    case "starting":
      return {
        type: "replica-starting",
        message: `${replica.id} starting (generation ${replica.generation}${replica.restarts > 0 ? `, restart ${replica.restarts}` : ""})`,
        inputs: { pid: replica.pid, generation: replica.generation, restarts: replica.restarts },
      };
    case "ready":
      return {
        type: "replica-ready",
        message: `${replica.id} ready on ${replica.url}`,
        inputs: { startMs: (replica.readyAt ?? replica.startedAt) - replica.startedAt, pid: replica.pid },
      };
    case "restarting":
    case "crash-looping":
      return {
        type: replica.state === "restarting" ? "replica-restarting" : "replica-crash-looping",
        message: `${replica.id} ${replica.message ?? "died"}`,
        inputs: {
          lastExit: replica.lastExit,
          restarts: replica.restarts,
          lastLogLines: replica.lastLogLines,
        },
      };
    case "unresponsive":
      return {
        type: "replica-unresponsive",
        message: `${replica.id} ${replica.message ?? "stopped answering its health check"}: out of rotation`,
        inputs: { pid: replica.pid },
      };
    case "draining":
      return undefined; // recorded by the controller when it retires the replica
    case "stopped":
      return {
        type: "replica-stopped",
        message: `${replica.id} stopped`,
        inputs: { lastExit: replica.lastExit },
      };
  }
}
