// `berth operator`'s engine: campaigns for the Lease and, while it leads, runs the controller
// (informers on ModelDeployments and on the Deployments and Pods Berth rendered, a work queue, a few
// workers calling reconcile) and the autoscale loop. Losing the Lease stops both before anyone else
// may start them, so two operators never act at once.
import { hostname } from "node:os";
import type { KubeClient } from "../k8s/client.js";
import { LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY } from "../k8s/objects.js";
import { EventRecorder } from "./events.js";
import { Informer, type InformerEvent, type LiveObject, objectKey } from "./informer.js";
import { LeaderElector } from "./leader.js";
import { WorkQueue } from "./queue.js";
import { reconcile, type ScaledModels } from "./reconcile.js";
import { CR_KIND, modelDeploymentsPath } from "./resource.js";

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
  /** Starts the autoscale loop; called on gaining the Lease, stopped on losing it. */
  startAutoscaler?: (client: KubeClient) => Autoscaler;
  log?: (line: string) => void;
}

export const DEFAULT_LEASE_NAME = "berth-operator";

export class Operator {
  readonly #options: OperatorOptions;
  readonly #identity: string;
  #elector: LeaderElector | undefined;
  #controller: RunningController | undefined;

  constructor(options: OperatorOptions) {
    this.#options = options;
    this.#identity = options.identity ?? `${hostname()}-${process.pid}`;
  }

  get identity(): string {
    return this.#identity;
  }

  get leading(): boolean {
    return this.#controller !== undefined;
  }

  /** Starts campaigning (or acting at once without leader election); returns without waiting to lead. */
  async start(): Promise<void> {
    const { lease } = this.#options;
    if (lease === false || lease === undefined) {
      await this.#startController();
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
    if (this.#elector) await this.#elector.stop();
    else await this.#stopController();
  }

  async #startController(): Promise<void> {
    this.#controller = await startController(this.#options, this.#identity);
  }

  async #stopController(): Promise<void> {
    const controller = this.#controller;
    this.#controller = undefined;
    await controller?.stop();
  }
}

interface RunningController {
  stop(): Promise<void>;
}

/** Informers, queue and workers (and the autoscale loop), until stop(). */
async function startController(options: OperatorOptions, identity: string): Promise<RunningController> {
  const { client, log } = options;
  const queue = new WorkQueue({
    onError: (key, error, retryInMs, failures) =>
      log?.(
        `${key}: reconcile failed (${failures}x), retry in ${retryInMs} ms: ${error instanceof Error ? error.message : String(error)}`,
      ),
  });
  const scope = options.namespace === undefined ? "" : `/namespaces/${encodeURIComponent(options.namespace)}`;
  const berthsObjects = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
  const onInformerError = (what: string) => (error: unknown, retryInMs: number) =>
    log?.(
      `watching ${what} failed, retry in ${retryInMs} ms: ${error instanceof Error ? error.message : String(error)}`,
    );

  const resources = new Informer({
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
  const deployments = new Informer({
    client,
    path: `/apis/apps/v1${scope}/deployments`,
    labelSelector: berthsObjects,
    onChange: (event, object) => {
      if (object.metadata.ownerReferences?.some((owner) => owner.kind === CR_KIND)) queueOwner(event, object);
    },
    onError: onInformerError("Deployments"),
  });
  const pods = new Informer({
    client,
    path: `/api/v1${scope}/pods`,
    labelSelector: berthsObjects,
    onChange: queueOwner,
    onError: onInformerError("Pods"),
  });
  // Caches first: a reconcile must see the Deployments and Pods that exist, not an empty cache.
  await Promise.all([deployments.start(), pods.start()]);
  await resources.start();

  const autoscaler = options.startAutoscaler?.(client);
  const events = new EventRecorder(client, identity, (error) =>
    log?.(`writing an event failed: ${error instanceof Error ? error.message : String(error)}`),
  );
  const context = {
    client,
    resources,
    deployments,
    pods,
    events,
    ...(autoscaler ? { autoscaler } : {}),
    ...(log ? { log } : {}),
  };
  queue.run(options.workers ?? 4, async (key) => {
    await reconcile(key, context);
    return undefined;
  });
  const resync = setInterval(
    () => {
      for (const resource of resources.list()) queue.add(objectKey(resource.metadata));
    },
    options.resyncMs ?? 10 * 60_000,
  );
  resync.unref();
  log?.(
    `reconciling ModelDeployments in ${options.namespace === undefined ? "all namespaces" : `namespace ${options.namespace}`} (${resources.list().length} found)`,
  );

  return {
    async stop() {
      clearInterval(resync);
      await queue.stop();
      await autoscaler?.stop();
      await Promise.all([resources.stop(), deployments.stop(), pods.stop()]);
    },
  };
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
