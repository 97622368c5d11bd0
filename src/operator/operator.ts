// `berth operator`'s engine: campaigns for the Lease and, while it leads, runs the controller
// (informers on ModelDeployments and on the Deployments and Pods Berth rendered, a work queue, a few
// workers calling reconcile) and the autoscale loop. Losing the Lease stops both before anyone else
// may start them, so two operators never act at once.
import { hostname } from "node:os";
import type { KubeClient } from "../k8s/client.js";
import { CRD_KIND } from "../k8s/crd.js";
import { LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY } from "../k8s/objects.js";
import { EventRecorder } from "./events.js";
import type { Check, HealthSource } from "./health.js";
import { Informer, type InformerEvent, type LiveObject, objectKey } from "./informer.js";
import { LeaderElector } from "./leader.js";
import { createOperatorMetrics, type OperatorGauges, type OperatorMetrics } from "./metrics.js";
import { WorkQueue } from "./queue.js";
import { type ReconcileContext, reconcile, type ScaledModels, subjectOf } from "./reconcile.js";
import { modelDeploymentsPath } from "./resource.js";

/** The autoscale loop as the operator drives it (gw's src/operator/autoscale.ts provides one). */
export interface Autoscaler extends ScaledModels {
  stop(): Promise<void>;
}

export interface OperatorOptions {
  client: KubeClient;
  /** Watch one namespace; default all. */
  namespace?: string;
  /** Reconciles at once (different resources; one resource is never reconciled twice at once). Default 4. */
  workers?: number;
  /** This operator's name in the Lease and in events. Default host name + pid. */
  identity?: string;
  /** Leader election; `false` acts at once (one operator only, e.g. on a laptop). */
  lease?:
    | false
    | {
        namespace: string;
        name: string;
        durationMs?: number;
        renewDeadlineMs?: number;
        retryPeriodMs?: number;
      };
  /** Every resource is reconciled again this often even without events (drift on unwatched kinds). Default 10 min. */
  resyncMs?: number;
  /**
   * Starts the autoscale loop; called on gaining the Lease, stopped on losing it. `onDecision` puts
   * a decision worth telling on the resource as a Normal event.
   */
  startAutoscaler?: (
    client: KubeClient,
    onDecision: (key: string, reason: string, message: string) => void,
  ) => Autoscaler;
  log?: (line: string) => void;
}

export const DEFAULT_LEASE_NAME = "berth-operator";

export class Operator implements HealthSource {
  readonly #options: OperatorOptions;
  readonly #identity: string;
  /** Its own registry: leadership, reconciles, queue and cache (served by `berth operator`'s /metrics). */
  readonly metrics: OperatorMetrics;
  #elector: LeaderElector | undefined;
  #controller: Controller | undefined;
  #started = false;
  #stopping = false;
  /** Why this operator cannot work any more (only a restart mends it): /healthz fails. */
  #fatal: string | undefined;

  constructor(options: OperatorOptions) {
    this.#options = options;
    this.#identity = options.identity ?? `${hostname()}-${process.pid}`;
    this.metrics = createOperatorMetrics(() => this.#gauges());
  }

  get identity(): string {
    return this.#identity;
  }

  get leading(): boolean {
    return this.#controller !== undefined;
  }

  /** Starts campaigning (or acting at once without leader election); returns without waiting to lead. */
  async start(): Promise<void> {
    this.#started = true;
    const { lease } = this.#options;
    if (lease === false || lease === undefined) {
      this.#startController();
      return;
    }
    this.#elector = new LeaderElector({
      client: this.#options.client,
      namespace: lease.namespace,
      name: lease.name,
      identity: this.#identity,
      ...(lease.durationMs === undefined ? {} : { leaseDurationMs: lease.durationMs }),
      ...(lease.renewDeadlineMs === undefined ? {} : { renewDeadlineMs: lease.renewDeadlineMs }),
      ...(lease.retryPeriodMs === undefined ? {} : { retryPeriodMs: lease.retryPeriodMs }),
      onStartedLeading: () => this.#startController(),
      onStoppedLeading: () => this.#stopController(),
      ...(this.#options.log ? { log: this.#options.log } : {}),
    });
    void this.#elector.start();
  }

  /** Stops reconciling, then hands the Lease back. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#elector) await this.#elector.stop();
    else await this.#stopController();
  }

  /** Not awaited by the elector: filling the caches must not hold up renewing the Lease. */
  #startController(): void {
    const controller = new Controller(this.#options, this.#identity, this.metrics);
    this.#controller = controller;
    controller.start().catch((error: unknown) => {
      if (this.#controller !== controller) return; // stopped meanwhile: not a failure
      this.#fatal = `the controller did not start: ${message(error)}`;
      this.#options.log?.(this.#fatal);
    });
  }

  /** /healthz: the process answers, and nothing failed that only a restart mends. */
  live(): Check {
    return this.#fatal === undefined ? { ok: true, detail: "ok" } : { ok: false, detail: this.#fatal };
  }

  /** /readyz: leading with synced informers, or standing by while the Lease answers normally. */
  ready(): Check {
    if (this.#fatal !== undefined) return { ok: false, detail: this.#fatal };
    if (this.#stopping) return { ok: false, detail: "stopping" };
    if (!this.#started) return { ok: false, detail: "not started" };
    const lastTry = this.#elector?.lastTry;
    if (lastTry?.error !== undefined)
      return { ok: false, detail: `leader election failing: ${lastTry.error}` };
    const controller = this.#controller;
    if (controller !== undefined) {
      return controller.synced
        ? { ok: true, detail: `leading: informers synced, ${controller.resourceCount} ModelDeployments` }
        : { ok: false, detail: "leading: informers not synced yet" };
    }
    if (lastTry === undefined) return { ok: false, detail: "campaigning: no answer about the Lease yet" };
    return {
      ok: true,
      detail: `standing by: Lease held by ${lastTry.holder ?? "nobody (it may be taken next)"}`,
    };
  }

  #gauges(): OperatorGauges {
    const controller = this.#controller;
    return {
      leading: controller !== undefined,
      queueDepth: controller?.queueDepth ?? 0,
      resources: controller?.resourceCount ?? 0,
    };
  }

  async #stopController(): Promise<void> {
    const controller = this.#controller;
    this.#controller = undefined;
    await controller?.stop();
  }
}

/** Informers, queue and workers (and the autoscale loop) while this operator leads. */
class Controller {
  readonly #options: OperatorOptions;
  readonly #queue: WorkQueue;
  readonly #resources: Informer;
  readonly #deployments: Informer;
  readonly #pods: Informer;
  readonly #events: EventRecorder;
  readonly #metrics: OperatorMetrics;
  #autoscaler: Autoscaler | undefined;
  #resync: NodeJS.Timeout | undefined;
  #stopped = false;
  #synced = false;

  constructor(options: OperatorOptions, identity: string, metrics: OperatorMetrics) {
    this.#options = options;
    this.#metrics = metrics;
    const { client, log } = options;
    const queue = new WorkQueue({
      onError: (key, error, retryInMs, failures) =>
        log?.(`${key}: reconcile failed (${failures}x), retry in ${retryInMs} ms: ${message(error)}`),
    });
    this.#queue = queue;
    const scope =
      options.namespace === undefined ? "" : `/namespaces/${encodeURIComponent(options.namespace)}`;
    const berthsObjects = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
    const onInformerError = (what: string) => (error: unknown, retryInMs: number) =>
      log?.(`watching ${what} failed, retry in ${retryInMs} ms: ${message(error)}`);
    this.#resources = new Informer({
      client,
      path: modelDeploymentsPath(options.namespace),
      onChange: (event, object, previous) => {
        if (event !== "updated" || specChanged(object, previous)) queue.add(objectKey(object.metadata));
      },
      onError: onInformerError("ModelDeployments"),
    });
    // A change to a rendered Deployment or one of its pods queues the resource that owns it (status follows).
    const queueOwner = (_event: InformerEvent, object: LiveObject) => {
      const instance = object.metadata.labels?.[LABEL_INSTANCE];
      if (instance) queue.add(objectKey({ namespace: object.metadata.namespace, name: instance }));
    };
    this.#deployments = new Informer({
      client,
      path: `/apis/apps/v1${scope}/deployments`,
      labelSelector: berthsObjects,
      onChange: (event, object) => {
        if (object.metadata.ownerReferences?.some((owner) => owner.kind === CRD_KIND))
          queueOwner(event, object);
      },
      onError: onInformerError("Deployments"),
    });
    this.#pods = new Informer({
      client,
      path: `/api/v1${scope}/pods`,
      labelSelector: berthsObjects,
      onChange: queueOwner,
      onError: onInformerError("Pods"),
    });
    this.#events = new EventRecorder(client, identity, (error) =>
      log?.(`writing an event failed: ${message(error)}`),
    );
  }

  async start(): Promise<void> {
    const options = this.#options;
    // Caches first: a reconcile must see the Deployments and Pods that exist, not an empty cache.
    await Promise.all([this.#deployments.start(), this.#pods.start()]);
    if (this.#stopped) return;
    await this.#resources.start();
    if (this.#stopped) return;
    this.#autoscaler = options.startAutoscaler?.(options.client, (key, reason, words) => {
      const [namespace = "", name = ""] = key.split("/");
      const resource = this.#resources.get(namespace, name);
      if (resource) void this.#events.record(subjectOf(resource), "Normal", reason, words);
    });
    const context: ReconcileContext = {
      client: options.client,
      resources: this.#resources,
      deployments: this.#deployments,
      pods: this.#pods,
      events: this.#events,
      ...(this.#autoscaler ? { autoscaler: this.#autoscaler } : {}),
      ...(options.log ? { log: options.log } : {}),
    };
    this.#queue.run(options.workers ?? 4, async (key) => {
      const started = performance.now();
      try {
        await reconcile(key, context);
      } catch (error) {
        this.#metrics.recordReconcile("error", (performance.now() - started) / 1000);
        throw error;
      }
      this.#metrics.recordReconcile("success", (performance.now() - started) / 1000);
      return undefined;
    });
    this.#resync = setInterval(
      () => {
        for (const resource of this.#resources.list()) this.#queue.add(objectKey(resource.metadata));
      },
      options.resyncMs ?? 10 * 60_000,
    );
    this.#resync.unref();
    this.#synced = true;
    options.log?.(
      `reconciling ModelDeployments in ${options.namespace === undefined ? "all namespaces" : `namespace ${options.namespace}`} (${this.#resources.list().length} found)`,
    );
  }

  /** The caches are filled and the workers run. */
  get synced(): boolean {
    return this.#synced;
  }

  get queueDepth(): number {
    return this.#queue.length;
  }

  get resourceCount(): number {
    return this.#resources.list().length;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#resync);
    await this.#queue.stop();
    await this.#autoscaler?.stop();
    await Promise.all([this.#resources.stop(), this.#deployments.stop(), this.#pods.stop()]);
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Whether an update asks for a reconcile: a new generation (spec), labels or annotations (they are
 * rendered onto every object), or deletion. Status writes — the operator's own — do not.
 */
function specChanged(object: LiveObject, previous: LiveObject | undefined): boolean {
  if (!previous) return true;
  const now = object.metadata;
  const before = previous.metadata;
  return (
    now.generation !== before.generation ||
    now.uid !== before.uid ||
    now.deletionTimestamp !== before.deletionTimestamp ||
    JSON.stringify(now.labels ?? {}) !== JSON.stringify(before.labels ?? {}) ||
    JSON.stringify(now.annotations ?? {}) !== JSON.stringify(before.annotations ?? {})
  );
}
