// The load every gateway replica sees, summed per model, for the autoscale loop. One long poll per
// gateway (GET /api/load with waitMs): it answers every period, and at once when a request is held at
// zero replicas (a wake), which the loop acts on without waiting for its next period.
//
// Gateways are found from the gateway Service's EndpointSlices (every endpoint with an address:
// a draining gateway's requests still count), or given as URLs by the caller. From outside the
// cluster the pods are reached through the API server's pod proxy (RBAC: get pods/proxy).
import { request as httpRequest } from "undici";
import type { LoadSnapshot } from "../gateway/directory.js";
import { LOAD_PATH, type LoadReport, loadReportSchema } from "../gateway/load-endpoint.js";
import type { KubeClient } from "../k8s/client.js";
import type { Logger } from "../util/log.js";
import { abortableDelay } from "./delay.js";
import { Informer, type LiveObject } from "./informer.js";

export interface GatewayService {
  namespace: string;
  name: string;
}

export const DEFAULT_GATEWAY_SERVICE: GatewayService = { namespace: "berth-system", name: "berth-gateway" };

/** One gateway replica: how to ask it for its load. */
export interface GatewayTarget {
  /** Stable name (the pod's, or the URL). */
  id: string;
  fetchLoad(query: { wakes?: number; waitMs?: number }, signal: AbortSignal): Promise<LoadReport>;
}

export interface GatewayLoadOptions {
  /** Base URLs of the gateways, when the caller knows them (tests, a gateway run by hand). */
  gateways?: () => Promise<string[]>;
  /** Else: the gateway Service whose EndpointSlices list them. */
  kube?: KubeClient;
  service?: GatewayService;
  /** Reach gateway pods through the API server's pod proxy (an operator outside the cluster). */
  viaApiServerProxy?: boolean;
  /** How long one poll waits for a wake before it answers anyway: the sampling period. */
  pollWaitMs: number;
  /** Called when some gateway holds a new request at zero replicas. */
  onWake: () => void;
  logger?: Logger;
  now?: () => number;
}

interface Poller {
  target: GatewayTarget;
  abort: AbortController;
  report?: LoadReport;
  receivedAt?: number;
  done: Promise<void>;
}

/** A gateway that has not answered for this many periods no longer counts (it is gone or stuck). */
const STALE_PERIODS = 5;

export class GatewayLoad {
  readonly #options: GatewayLoadOptions;
  readonly #pollers = new Map<string, Poller>();
  readonly #slices?: Informer;
  readonly #now: () => number;
  #stopped = false;

  constructor(options: GatewayLoadOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    if (!options.gateways) {
      if (!options.kube) throw new Error("GatewayLoad needs either gateways() or a kube client");
      const service = options.service ?? DEFAULT_GATEWAY_SERVICE;
      this.#slices = new Informer({
        client: options.kube,
        path: `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(service.namespace)}/endpointslices`,
        labelSelector: `kubernetes.io/service-name=${service.name}`,
        onChange: () => void this.refresh(),
        onError: (error, retryInMs) =>
          options.logger?.warn({ err: error, retryInMs }, "watching the gateway's EndpointSlices failed"),
      });
    }
  }

  async start(): Promise<void> {
    await this.#slices?.start();
    await this.refresh();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#slices?.stop();
    const pollers = [...this.#pollers.values()];
    this.#pollers.clear();
    for (const poller of pollers) poller.abort.abort();
    await Promise.all(pollers.map((poller) => poller.done));
  }

  /** Re-reads the gateway list: polls new gateways, stops polling those gone. */
  async refresh(): Promise<void> {
    if (this.#stopped) return;
    const targets = await this.#targets();
    const wanted = new Map(targets.map((target) => [target.id, target]));
    for (const [id, poller] of this.#pollers) {
      if (wanted.has(id)) continue;
      poller.abort.abort();
      this.#pollers.delete(id);
    }
    for (const [id, target] of wanted) if (!this.#pollers.has(id)) this.#startPoller(target);
  }

  /** Every fresh gateway's load, summed per model. */
  sum(): Map<string, LoadSnapshot> {
    const freshAfter = this.#now() - STALE_PERIODS * this.#options.pollWaitMs;
    const reports = [...this.#pollers.values()]
      .filter((poller) => poller.report && (poller.receivedAt ?? 0) >= freshAfter)
      .map((poller) => poller.report as LoadReport);
    return sumReports(reports);
  }

  /** Gateways polled right now, and how many answered recently. */
  gatewayCount(): { known: number; answering: number } {
    const freshAfter = this.#now() - STALE_PERIODS * this.#options.pollWaitMs;
    const pollers = [...this.#pollers.values()];
    return {
      known: pollers.length,
      answering: pollers.filter((poller) => (poller.receivedAt ?? 0) >= freshAfter).length,
    };
  }

  async #targets(): Promise<GatewayTarget[]> {
    if (this.#options.gateways) return (await this.#options.gateways()).map(urlTarget);
    const service = this.#options.service ?? DEFAULT_GATEWAY_SERVICE;
    const endpoints = gatewayEndpoints(this.#slices?.list() ?? []);
    const kube = this.#options.kube as KubeClient;
    return endpoints.map((endpoint) =>
      this.#options.viaApiServerProxy && endpoint.pod
        ? podProxyTarget(kube, service.namespace, endpoint.pod, endpoint.port)
        : urlTarget(
            `http://${endpoint.address.includes(":") ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`,
          ),
    );
  }

  #startPoller(target: GatewayTarget): void {
    const abort = new AbortController();
    const poller: Poller = { target, abort, done: Promise.resolve() };
    this.#pollers.set(target.id, poller);
    poller.done = (async () => {
      let failures = 0;
      while (!abort.signal.aborted) {
        try {
          const previous = poller.report;
          const report = await target.fetchLoad(
            previous ? { wakes: previous.wakes, waitMs: this.#options.pollWaitMs } : {},
            abort.signal,
          );
          poller.report = report;
          poller.receivedAt = this.#now();
          failures = 0;
          if (previous && report.wakes !== previous.wakes) this.#options.onWake();
        } catch (error) {
          if (abort.signal.aborted) return;
          failures++;
          if (failures === 1 || failures % 30 === 0)
            this.#options.logger?.warn(
              { gateway: target.id, err: error, failures },
              `cannot read the load of gateway ${target.id}: ${error instanceof Error ? error.message : String(error)}`,
            );
          // No busy loop against a gateway that refuses: one try per period.
          await abortableDelay(this.#options.pollWaitMs, abort.signal);
        }
      }
    })();
  }
}

/** Load reports of several gateways summed per model (a request is in exactly one gateway). */
export function sumReports(reports: readonly LoadReport[]): Map<string, LoadSnapshot> {
  const sums = new Map<string, LoadSnapshot>();
  for (const report of reports) {
    for (const snapshot of report.models) {
      const sum = sums.get(snapshot.model) ?? {
        model: snapshot.model,
        inFlight: 0,
        held: 0,
        completed: 0,
        lastRequestAt: 0,
        perUpstream: {},
      };
      sum.inFlight += snapshot.inFlight;
      sum.held += snapshot.held;
      sum.completed += snapshot.completed;
      sum.lastRequestAt = Math.max(sum.lastRequestAt, snapshot.lastRequestAt);
      for (const [upstream, count] of Object.entries(snapshot.perUpstream))
        sum.perUpstream[upstream] = (sum.perUpstream[upstream] ?? 0) + count;
      sums.set(snapshot.model, sum);
    }
  }
  return sums;
}

export interface GatewayEndpoint {
  address: string;
  port: number;
  pod?: string;
}

/** The gateway pods in its Service's slices: every endpoint with an address, deduplicated. */
export function gatewayEndpoints(slices: readonly LiveObject[]): GatewayEndpoint[] {
  const found = new Map<string, GatewayEndpoint>();
  for (const slice of slices) {
    const body = slice as unknown as {
      ports?: Array<{ name?: string; port?: number }>;
      endpoints?: Array<{ addresses?: string[]; targetRef?: { name?: string } }>;
    };
    const port = (body.ports?.find((candidate) => candidate.name === "http") ?? body.ports?.[0])?.port;
    if (port === undefined) continue;
    for (const endpoint of body.endpoints ?? []) {
      const address = endpoint.addresses?.[0];
      if (address === undefined) continue;
      const pod = endpoint.targetRef?.name;
      found.set(`${address}:${port}`, { address, port, ...(pod === undefined ? {} : { pod }) });
    }
  }
  return [...found.values()];
}

function loadQuery(query: { wakes?: number; waitMs?: number }): Record<string, string | undefined> {
  return {
    wakes: query.wakes === undefined ? undefined : String(query.wakes),
    waitMs: query.waitMs === undefined ? undefined : String(query.waitMs),
  };
}

function urlTarget(baseUrl: string): GatewayTarget {
  const base = baseUrl.replace(/\/+$/, "");
  return {
    id: base,
    async fetchLoad(query, signal) {
      const search = new URLSearchParams();
      for (const [key, value] of Object.entries(loadQuery(query)))
        if (value !== undefined) search.set(key, value);
      const text = search.toString();
      const response = await httpRequest(`${base}${LOAD_PATH}${text ? `?${text}` : ""}`, { signal });
      const body = await response.body.text();
      if (response.statusCode !== 200)
        throw new Error(`${LOAD_PATH} answered ${response.statusCode}: ${body.slice(0, 200)}`);
      return loadReportSchema.parse(JSON.parse(body));
    },
  };
}

function podProxyTarget(kube: KubeClient, namespace: string, pod: string, port: number): GatewayTarget {
  return {
    id: `${namespace}/${pod}`,
    async fetchLoad(query, signal) {
      const response = await kube.request({
        method: "GET",
        path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(`${pod}:${port}`)}/proxy${LOAD_PATH}`,
        query: loadQuery(query),
        objectRef: `Pod/${pod}`,
        signal,
      });
      return loadReportSchema.parse(response.body);
    },
  };
}
