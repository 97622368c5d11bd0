// The autoscale loop of operator mode: the load all gateway replicas see, summed per model, goes
// through the same autoscaler as `berth up` (decideReplicas: same decisions), and the result is set
// on the model's Deployment through the scale subresource (field manager "berth-autoscaler"),
// including 0 after idleToZero, and 1 as soon as a gateway holds a request (its long poll answers at
// once on a wake, and the loop decides then instead of on its next period).
//
// The operator runs it only while it holds the leader Lease. A spec with autoscaling off, or with
// spec.kubernetes.autoscalingMetric "cpu" (a HorizontalPodAutoscaler scales it), is left alone.
import {
  type AutoscalerEvent,
  type AutoscalerState,
  decideReplicas,
  type LoadObservation,
} from "../control/autoscaler.js";
import type { LoadSnapshot } from "../gateway/directory.js";
import type { KubeClient } from "../k8s/client.js";
import { LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY } from "../k8s/objects.js";
import { type ModelDeployment, servedName } from "../spec/index.js";
import type { Logger } from "../util/log.js";
import { GatewayLoad, type GatewayService } from "./gateway-load.js";
import { Informer, type LiveObject } from "./informer.js";

export const AUTOSCALER_FIELD_MANAGER = "berth-autoscaler";

/**
 * Whether Berth's loop scales this model: autoscaling on, a range to scale in (min 0 / max 1
 * included: zero and back), and no CPU HPA asked for. Otherwise the HPA scales it, or the count is
 * fixed and the operator's apply sets it.
 */
export function berthAutoscales(deployment: ModelDeployment): boolean {
  const { autoscaling, replicas, kubernetes } = deployment.spec;
  return autoscaling.enabled && replicas.max > replicas.min && kubernetes.autoscalingMetric !== "cpu";
}

export interface TrackedModel {
  namespace: string;
  name: string;
  deployment: ModelDeployment;
}

export interface ScaleDecision {
  reason: AutoscalerEvent["reason"];
  message: string;
  /** The replica count decided. */
  desired: number;
  /** The Deployment's count before (when it changed). */
  previous: number;
  /** The decision's inputs (in flight, ready, bounds), for events and logs. */
  inputs: AutoscalerEvent["inputs"];
}

export interface AutoscalerOptions {
  kube: KubeClient;
  logger?: Logger;
  /** Gateway base URLs, when the caller knows them; default: the gateway Service's EndpointSlices. */
  gateways?: () => Promise<string[]>;
  gatewayService?: GatewayService;
  /** Reach gateway pods through the API server's pod proxy (an operator outside the cluster). */
  viaApiServerProxy?: boolean;
  /** Sampling and decision period. Default 1 s. */
  syncIntervalMs?: number;
  /** A decision worth telling (a scale, or a new reason), for the resource's events. */
  onDecision?: (key: string, decision: ScaleDecision) => void;
  now?: () => number;
}

export interface Autoscaler {
  /** Starts or updates scaling of a model (idempotent; call it on every reconcile). */
  track(model: TrackedModel): void;
  untrack(key: string): void;
  /** The replica count last decided for "namespace/name", for status.desiredReplicas. */
  desired(key: string): number | undefined;
  stop(): Promise<void>;
}

interface ModelState {
  model: TrackedModel;
  observations: LoadObservation[];
  state?: AutoscalerState;
  lastReason?: AutoscalerEvent["reason"];
  /** What this loop last wrote, and when (the watch may not have shown it yet). */
  written?: { replicas: number; at: number };
}

const EMPTY_LOAD = { inFlight: 0, held: 0, completed: 0, lastRequestAt: 0, perUpstream: {} };
/** A write the watch has not confirmed yet is not repeated for this long. */
const WRITE_SETTLE_MS = 5_000;

/**
 * Starts the loop at once (the operator calls it on gaining the Lease); `ready` resolves once its
 * first lists are in. Models tracked before that are decided from then on.
 */
export function startAutoscaler(options: AutoscalerOptions): Autoscaler & { ready: Promise<void> } {
  const loop = new AutoscaleLoop(options);
  const ready = loop.start();
  ready.catch((error: unknown) => options.logger?.error({ err: error }, "the autoscale loop did not start"));
  return Object.assign(loop, { ready });
}

class AutoscaleLoop implements Autoscaler {
  readonly #options: AutoscalerOptions;
  readonly #now: () => number;
  readonly #intervalMs: number;
  readonly #models = new Map<string, ModelState>();
  readonly #deployments: Informer;
  readonly #load: GatewayLoad;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #blind = false;

  constructor(options: AutoscalerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#intervalMs = options.syncIntervalMs ?? 1000;
    this.#deployments = new Informer({
      client: options.kube,
      path: "/apis/apps/v1/deployments",
      labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_COMPONENT}=model-server`,
      onChange: () => {},
      onError: (error, retryInMs) =>
        options.logger?.warn({ err: error, retryInMs }, "watching Deployments failed"),
    });
    this.#load = new GatewayLoad({
      kube: options.kube,
      pollWaitMs: this.#intervalMs,
      onWake: () => void this.#pass(),
      ...(options.gateways ? { gateways: options.gateways } : {}),
      ...(options.gatewayService ? { service: options.gatewayService } : {}),
      ...(options.viaApiServerProxy ? { viaApiServerProxy: true } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      now: this.#now,
    });
  }

  async start(): Promise<void> {
    await this.#deployments.start();
    await this.#load.start();
    this.#schedule();
  }

  track(model: TrackedModel): void {
    const key = `${model.namespace}/${model.name}`;
    if (!berthAutoscales(model.deployment)) {
      this.untrack(key);
      return;
    }
    const existing = this.#models.get(key);
    if (existing) existing.model = model;
    else this.#models.set(key, { model, observations: [] });
  }

  untrack(key: string): void {
    this.#models.delete(key);
  }

  desired(key: string): number | undefined {
    return this.#models.get(key)?.state?.desired;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    await Promise.all([this.#load.stop(), this.#deployments.stop()]);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      // Gateways come and go (a URL list given by the caller is read again each period).
      void this.#load.refresh().catch(() => {});
      void this.#pass().finally(() => this.#schedule());
    }, this.#intervalMs);
  }

  /** One decision for every model; a wake during a pass runs another right after (passes never overlap). */
  #pass(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          // Blind (no gateway answers): no load is not zero load. Keep every count as it is
          // rather than scale models to zero that may be busy.
          const gateways = this.#load.gatewayCount();
          if (gateways.answering === 0) {
            if (!this.#blind)
              this.#options.logger?.warn(
                gateways,
                `no gateway answered for its load (${gateways.known} known): replica counts are kept until one does`,
              );
            this.#blind = true;
            continue;
          }
          this.#blind = false;
          const loads = this.#load.sum();
          await Promise.all(
            [...this.#models.entries()].map(([key, state]) => this.#decide(key, state, loads)),
          );
        } while (this.#again && !this.#stopped);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async #decide(key: string, state: ModelState, loads: Map<string, LoadSnapshot>): Promise<void> {
    const { namespace, name, deployment } = state.model;
    const workload = this.#deployments.get(namespace, name);
    // Not created yet (the operator applies it): nothing to scale, no observation to keep.
    if (!workload) return;
    const now = this.#now();
    const model = servedName(deployment);
    const load = loads.get(model) ?? { model, ...EMPTY_LOAD };
    const spec = deployment.spec;
    state.observations.push({ at: now, inFlight: load.inFlight });
    const keepFrom = now - spec.autoscaling.stableWindow;
    while ((state.observations[0]?.at ?? now) <= keepFrom) state.observations.shift();

    const current = deploymentReplicas(workload);
    // The loop starts from the count the Deployment has (a new leader, a restart: nothing jumps;
    // a new Deployment: the API server's 1, then min/max and the load decide). So replicas.initial
    // above min is not applied in operator mode.
    state.state ??= {
      desired: current,
      panicSince: undefined,
      panicLastOverAt: undefined,
      recommendations: [{ at: now, desired: current }],
      lastActiveAt: now,
    };
    const decision = decideReplicas({
      observations: state.observations,
      readyReplicas: readyReplicas(workload),
      spec,
      previous: state.state,
      now,
      lastRequestAt: load.lastRequestAt,
      waiting: load.held > 0,
      ...(manualFloor(deployment) === undefined ? {} : { manualFloor: manualFloor(deployment) }),
    });
    state.state = decision.state;
    const newReason = decision.event.reason !== state.lastReason;
    state.lastReason = decision.event.reason;
    const desired = decision.desired;
    const settling = state.written?.replicas === desired && now - state.written.at < WRITE_SETTLE_MS;
    if (desired !== current && !settling) {
      try {
        await scaleTo(this.#options.kube, namespace, name, desired);
        state.written = { replicas: desired, at: now };
      } catch (error) {
        this.#options.logger?.error(
          { err: error, model: key, desired },
          `cannot scale Deployment ${key} to ${desired}: ${error instanceof Error ? error.message : String(error)}`,
        );
        return;
      }
    }
    const quiet = decision.event.reason === "steady" || decision.event.reason === "scale-down-delayed";
    if (desired !== current || (newReason && !quiet)) {
      const told: ScaleDecision = {
        reason: decision.event.reason,
        message: decision.event.message,
        desired,
        previous: current,
        inputs: decision.event.inputs,
      };
      this.#options.logger?.info(
        { model: key, ...told },
        `${key}: ${decision.event.reason}: ${decision.event.message}`,
      );
      this.#options.onDecision?.(key, told);
    }
  }
}

/** The count the Deployment asks for (the API server defaults an absent one to 1). */
function deploymentReplicas(workload: LiveObject): number {
  const spec = workload.spec as { replicas?: number } | undefined;
  return spec?.replicas ?? 1;
}

function readyReplicas(workload: LiveObject): number {
  const status = workload.status as { readyReplicas?: number } | undefined;
  return status?.readyReplicas ?? 0;
}

/** spec.replicas.desired (kubectl scale, an HPA, `berth scale`): a floor for the autoscaler. */
function manualFloor(deployment: ModelDeployment): number | undefined {
  const replicas = deployment.spec.replicas as { desired?: number };
  return replicas.desired;
}

async function scaleTo(kube: KubeClient, namespace: string, name: string, replicas: number): Promise<void> {
  await kube.request({
    method: "PATCH",
    path: `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(name)}/scale`,
    query: { fieldManager: AUTOSCALER_FIELD_MANAGER },
    body: { spec: { replicas } },
    contentType: "application/merge-patch+json",
    objectRef: `Deployment/${name}`,
  });
}
