// Fills the console's history: on an interval, scrapes every ready replica's /metrics, adds what
// the gateway itself knows (held requests, ready replicas, desired from the controller) and records
// one point per model. A replica that does not answer in time is left out of that sample only.
import { request } from "undici";
import type { UpstreamDirectory } from "./directory.js";
import { type GatewayHistory, historyPoint, parseReplicaMetrics, type ReplicaSample } from "./history.js";
import type { LoadTracker } from "./load.js";

export interface HistorySamplerDeps {
  directory: UpstreamDirectory;
  load: LoadTracker;
  history: GatewayHistory;
  /** Desired replicas per served model name (the controller's), when there is a controller. */
  desiredReplicas?: () => Record<string, number>;
  /** Reads a replica's /metrics text; rejects on failure. */
  scrape?: (baseUrl: string) => Promise<string>;
  now?: () => number;
}

const SCRAPE_TIMEOUT_MS = 1_500;

async function scrapeMetrics(baseUrl: string): Promise<string> {
  const response = await request(`${baseUrl}/metrics`, {
    headersTimeout: SCRAPE_TIMEOUT_MS,
    bodyTimeout: SCRAPE_TIMEOUT_MS,
  });
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new Error(`metrics answered ${response.statusCode}`);
  }
  return response.body.text();
}

export class HistorySampler {
  readonly #deps: HistorySamplerDeps;
  readonly #scrape: (baseUrl: string) => Promise<string>;
  readonly #now: () => number;
  /** Per model: the time and replica scrapes of the last sample. */
  readonly #previous = new Map<string, { at: number; samples: Map<string, ReplicaSample> }>();
  #timer: NodeJS.Timeout | undefined;
  #sampling: Promise<void> | undefined;

  constructor(deps: HistorySamplerDeps) {
    this.#deps = deps;
    this.#scrape = deps.scrape ?? scrapeMetrics;
    this.#now = deps.now ?? Date.now;
  }

  /** Takes one sample of every model; overlapping calls share the one in progress. */
  sampleOnce(): Promise<void> {
    this.#sampling ??= this.#sample().finally(() => {
      this.#sampling = undefined;
    });
    return this.#sampling;
  }

  start(intervalMs: number): void {
    if (this.#timer) return;
    void this.sampleOnce();
    this.#timer = setInterval(() => void this.sampleOnce(), intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sampling;
  }

  async #sample(): Promise<void> {
    const { directory, load, history } = this.#deps;
    const models = directory.models();
    let desired: Record<string, number> | undefined;
    try {
      desired = this.#deps.desiredReplicas?.();
    } catch {
      desired = undefined;
    }
    await Promise.all(
      models.map(async (model) => {
        const ready = directory.upstreams(model).filter((upstream) => upstream.state === "ready");
        const samples = new Map<string, ReplicaSample>();
        await Promise.all(
          ready.map(async (upstream) => {
            const text = await this.#scrape(upstream.url).catch(() => undefined);
            const sample = text === undefined ? undefined : parseReplicaMetrics(text);
            if (sample) samples.set(upstream.id, sample);
          }),
        );
        const at = this.#now();
        const before = this.#previous.get(model);
        history.record(
          model,
          historyPoint({
            at,
            seconds: before ? (at - before.at) / 1000 : 0,
            previous: before?.samples ?? new Map(),
            current: samples,
            held: load.load(model).held,
            ready: ready.length,
            desired: desired?.[model] ?? null,
          }),
        );
        this.#previous.set(model, { at, samples });
      }),
    );
    const present = new Set(models);
    history.retainOnly(present);
    for (const model of this.#previous.keys()) if (!present.has(model)) this.#previous.delete(model);
  }
}
