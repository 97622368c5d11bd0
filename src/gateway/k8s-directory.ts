// The gateway's directory in a cluster: models and specs from the ModelDeployment resources, and
// each model's replicas from the EndpointSlices of its Service (both watched; relisted on 410 Gone).
//
// Only ready endpoints receive requests. A terminating endpoint (serving while its pod drains, or
// no longer serving) is "draining": nothing new goes to it, and its connections stay until the
// requests on them finish. An endpoint not ready and not terminating is "starting". The gateway does
// not scale: wake() only tells listeners (the load endpoint), and the operator's autoscale loop reads
// the held requests from the gateway's load and scales the Deployment 0 → 1.
import type { KubeClient } from "../k8s/client.js";
import { LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY } from "../k8s/objects.js";
import { Informer, type LiveObject, objectKey } from "../operator/informer.js";
import { modelDeploymentsPath, readModelDeployment } from "../operator/resource.js";
import { type ModelDeployment, servedName } from "../spec/index.js";
import type { Logger } from "../util/log.js";
import type { ModelUnavailable, Upstream, UpstreamDirectory, UpstreamState } from "./directory.js";

const SLICE_PATH = "/apis/discovery.k8s.io/v1";
/** EndpointSlices carry their Service's labels: this selects the model servers' slices only. */
export const MODEL_SLICE_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_COMPONENT}=model-server`;
const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/**
 * Turns a pod's address into the base URL the gateway dials; undefined means "not reachable yet".
 * In a cluster that is `http://IP:PORT` (the default). A TEST SEAM: the tests run no containers
 * (kwok plays the kubelet), so they map pod IPs to local `berth serve` processes standing in for the
 * pods' containers, as KubeAI's tests do; `berth gateway` never sets it.
 */
export type AddressResolver = (address: string, port: number) => string | undefined;

export interface KubernetesDirectoryOptions {
  kube: KubeClient;
  /** Watch one namespace; default every namespace the gateway may read. */
  namespace?: string;
  logger?: Logger;
  resolveAddress?: AddressResolver;
}

interface ModelEntry {
  key: string;
  deployment: ModelDeployment;
  createdAt: string;
  conditions: Condition[];
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

interface SliceEndpoint {
  addresses?: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  targetRef?: { kind?: string; name?: string };
}

interface SliceBody {
  ports?: Array<{ name?: string; port?: number }>;
  endpoints?: SliceEndpoint[];
}

const STATE_RANK: Record<UpstreamState, number> = {
  ready: 3,
  starting: 2,
  draining: 1,
  stopped: 0,
  failed: 0,
};

export class KubernetesDirectory implements UpstreamDirectory {
  readonly #options: KubernetesDirectoryOptions;
  readonly #resources: Informer;
  readonly #slices: Informer;
  readonly #listeners = new Set<() => void>();
  readonly #wakeListeners = new Set<(model: string) => void>();
  /** ModelDeployment key ("ns/name") → parsed spec; invalid ones are left out (and logged). */
  readonly #entries = new Map<string, ModelEntry>();
  /** Served name → the resource that serves it (the oldest, when two claim one name). */
  #byServedName = new Map<string, ModelEntry>();
  /** Service key ("ns/name") → its slices' endpoints as upstreams. */
  readonly #upstreams = new Map<string, Upstream[]>();
  readonly #parseFailures = new Map<string, string>();

  constructor(options: KubernetesDirectoryOptions) {
    this.#options = options;
    const scope = options.namespace ? `/namespaces/${encodeURIComponent(options.namespace)}` : "";
    const onError = (what: string) => (error: unknown, retryInMs: number) =>
      options.logger?.warn(
        { err: error, retryInMs },
        `watching ${what} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    this.#resources = new Informer({
      client: options.kube,
      path: modelDeploymentsPath(options.namespace),
      onChange: (event, object) => this.#onResource(event === "deleted", object),
      onError: onError("ModelDeployments"),
    });
    this.#slices = new Informer({
      client: options.kube,
      path: `${SLICE_PATH}${scope}/endpointslices`,
      labelSelector: MODEL_SLICE_SELECTOR,
      onChange: (_event, object) => this.#onSlice(object),
      onError: onError("EndpointSlices"),
    });
  }

  /** Lists and watches both kinds; resolves once both first lists are in (so the gateway can answer). */
  async start(): Promise<void> {
    await Promise.all([this.#resources.start(), this.#slices.start()]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.#resources.stop(), this.#slices.stop()]);
  }

  // ---- UpstreamDirectory ----

  models(): string[] {
    return [...this.#byServedName.keys()];
  }

  deployment(model: string): ModelDeployment | undefined {
    return this.#byServedName.get(model)?.deployment;
  }

  upstreams(model: string): readonly Upstream[] {
    const entry = this.#byServedName.get(model);
    return entry ? (this.#upstreams.get(entry.key) ?? []) : [];
  }

  /** Nothing to start here: the autoscale loop sees the held request in this gateway's load. */
  wake(model: string): void {
    for (const listener of this.#wakeListeners) listener(model);
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * A model none of whose endpoints is ready while its resource says it is Degraded (crash loop,
   * image or model pull failed, unschedulable): answered at once with the operator's words, not
   * held. ModelReady=False alone is normal (pulling, loading, scaled to zero): those requests wait.
   */
  unavailable(model: string): ModelUnavailable | undefined {
    const entry = this.#byServedName.get(model);
    if (!entry) return undefined;
    if (this.upstreams(model).some((upstream) => upstream.state === "ready")) return undefined;
    const degraded = entry.conditions.find(
      (condition) => condition.type === "Degraded" && condition.status === "True",
    );
    if (!degraded) return undefined;
    return { reason: degraded.message || degraded.reason || "the ModelDeployment is Degraded" };
  }

  /** Told on every held request (ReadyWaiter asks on each): the load endpoint answers its pollers early. */
  onWake(listener: (model: string) => void): () => void {
    this.#wakeListeners.add(listener);
    return () => this.#wakeListeners.delete(listener);
  }

  /** Re-reads every endpoint's address (after the test seam's mapping changed). */
  refresh(): void {
    for (const slice of this.#slices.list()) this.#rebuildService(serviceKeyOf(slice));
    this.#notify();
  }

  // ---- Watch handlers ----

  #onResource(deleted: boolean, object: LiveObject): void {
    const key = objectKey(object.metadata);
    if (deleted) {
      this.#entries.delete(key);
      this.#parseFailures.delete(key);
    } else {
      const parsed = readModelDeployment(object);
      if (parsed.ok) {
        this.#parseFailures.delete(key);
        this.#entries.set(key, {
          key,
          deployment: parsed.deployment,
          createdAt: object.metadata.creationTimestamp ?? "",
          conditions: conditionsOf(object),
        });
      } else {
        this.#entries.delete(key);
        // Logged once per distinct problem: a resource the API server accepted but Berth cannot read.
        if (this.#parseFailures.get(key) !== parsed.message) {
          this.#parseFailures.set(key, parsed.message);
          this.#options.logger?.warn(
            { resource: key },
            `ModelDeployment ${key} not served: ${parsed.message}`,
          );
        }
      }
    }
    this.#reindex();
    this.#rebuildService(key);
    this.#notify();
  }

  #onSlice(object: LiveObject): void {
    this.#rebuildService(serviceKeyOf(object));
    this.#notify();
  }

  #reindex(): void {
    const next = new Map<string, ModelEntry>();
    const sorted = [...this.#entries.values()].sort(
      (a, b) => a.createdAt.localeCompare(b.createdAt) || a.key.localeCompare(b.key),
    );
    for (const entry of sorted) {
      const name = servedName(entry.deployment);
      const holder = next.get(name);
      if (holder) {
        this.#options.logger?.warn(
          { resource: entry.key, servedBy: holder.key },
          `model name "${name}" of ${entry.key} is already served by ${holder.key}: requests go there`,
        );
        continue;
      }
      next.set(name, entry);
    }
    this.#byServedName = next;
  }

  /** The upstreams of one Service from all of its slices (an endpoint may sit in two while it moves). */
  #rebuildService(serviceKey: string): void {
    const resolve =
      this.#options.resolveAddress ??
      ((address: string, port: number) => `http://${urlHost(address)}:${port}`);
    const byId = new Map<string, Upstream>();
    // Upstreams carry the served name clients use (the Service is named after the resource).
    const entry = this.#entries.get(serviceKey);
    const model = entry ? servedName(entry.deployment) : serviceKey;
    for (const slice of this.#slices.list((item) => serviceKeyOf(item) === serviceKey)) {
      const body = slice as unknown as SliceBody;
      const port = (body.ports?.find((candidate) => candidate.name === "http") ?? body.ports?.[0])?.port;
      if (port === undefined) continue;
      for (const endpoint of body.endpoints ?? []) {
        const address = endpoint.addresses?.[0];
        if (address === undefined) continue;
        const url = resolve(address, port);
        if (url === undefined) continue;
        const id = endpoint.targetRef?.name ?? `${address}:${port}`;
        const upstream: Upstream = {
          id,
          model,
          url,
          state: endpointState(endpoint.conditions),
          // Which template a pod runs is not in an EndpointSlice; rollouts are the Deployment's.
          generation: 0,
        };
        const seen = byId.get(id);
        if (!seen || STATE_RANK[upstream.state] > STATE_RANK[seen.state]) byId.set(id, upstream);
      }
    }
    if (byId.size === 0) this.#upstreams.delete(serviceKey);
    else this.#upstreams.set(serviceKey, [...byId.values()]);
  }

  #notify(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (error) {
        this.#options.logger?.error({ err: error }, "directory listener failed");
      }
    }
  }
}

/** EndpointSlice conditions → what the gateway does with the endpoint (nil ready reads as ready). */
export function endpointState(conditions: SliceEndpoint["conditions"] = {}): UpstreamState {
  if (conditions.terminating === true) return "draining";
  return conditions.ready === false ? "starting" : "ready";
}

function serviceKeyOf(slice: LiveObject): string {
  const service = slice.metadata.labels?.[SERVICE_NAME_LABEL] ?? "";
  return `${slice.metadata.namespace ?? ""}/${service}`;
}

function urlHost(address: string): string {
  return address.includes(":") ? `[${address}]` : address;
}

function conditionsOf(object: LiveObject): Condition[] {
  const status = object.status as { conditions?: unknown } | undefined;
  return Array.isArray(status?.conditions) ? (status.conditions as Condition[]) : [];
}
