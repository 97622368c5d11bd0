// An informer: a local copy of one kind's objects (one namespace or all), kept current by LIST then
// WATCH from the list's resourceVersion, and a callback per change. The operator reads its caches
// instead of asking the API server on every reconcile.
//
// The same loop as client-node's ListWatch (cache.ts), on Berth's raw-JSON client: list, watch from
// the list's resourceVersion with bookmarks, and relist when the watch ends (the server's timeout, or
// ERROR 410 Gone when the version is too old), diffing the new list against the cache so deletions
// missed while disconnected are still reported. Unlike ListWatch, a failed request does not stop
// the informer (ListWatch leaves restarting to the caller): it retries with backoff until stopped.
import type { KubeClient } from "../k8s/client.js";
import { abortableDelay } from "./delay.js";
import { backoffDelay } from "./queue.js";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>;
  deletionTimestamp?: string;
  creationTimestamp?: string;
}

/** An object as the API server sends it: only metadata is typed; readers parse the rest. */
export interface LiveObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export type InformerEvent = "added" | "updated" | "deleted";

export interface InformerOptions {
  client: KubeClient;
  /** The collection's URL path: /apis/GROUP/VERSION[/namespaces/NS]/PLURAL. */
  path: string;
  labelSelector?: string;
  onChange: (event: InformerEvent, object: LiveObject, previous?: LiveObject) => void;
  onError?: (error: unknown, retryInMs: number) => void;
  /** How long one watch request lasts before the server ends it (and the informer relists). Default 300 s. */
  watchTimeoutSeconds?: number;
}

export const objectKey = (meta: Pick<ObjectMeta, "name" | "namespace">): string =>
  `${meta.namespace ?? ""}/${meta.name}`;

export class Informer {
  readonly #options: InformerOptions;
  readonly #cache = new Map<string, LiveObject>();
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  #synced!: () => void;
  readonly #syncedPromise = new Promise<void>((resolve) => {
    this.#synced = resolve;
  });

  constructor(options: InformerOptions) {
    this.#options = options;
  }

  /** Starts listing and watching; resolves once the first list is in the cache. */
  async start(): Promise<void> {
    this.#running ??= this.#loop();
    await Promise.race([this.#syncedPromise, this.#running]);
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  get(namespace: string | undefined, name: string): LiveObject | undefined {
    return this.#cache.get(objectKey({ namespace, name }));
  }

  list(filter?: (object: LiveObject) => boolean): LiveObject[] {
    const all = [...this.#cache.values()];
    return filter ? all.filter(filter) : all;
  }

  async #loop(): Promise<void> {
    const signal = this.#abort.signal;
    let failures = 0;
    let resourceVersion: string | undefined;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.#relist(signal);
          this.#synced();
        }
        const query = {
          resourceVersion,
          allowWatchBookmarks: "true",
          labelSelector: this.#options.labelSelector,
          timeoutSeconds: String(this.#options.watchTimeoutSeconds ?? 300),
        };
        await this.#options.client.watch(
          this.#options.path,
          query,
          (event) => {
            const object = event.object as unknown as LiveObject;
            if (object.metadata?.resourceVersion) resourceVersion = object.metadata.resourceVersion;
            if (event.type === "ADDED" || event.type === "MODIFIED") this.#put(object);
            else if (event.type === "DELETED") this.#remove(object);
            return signal.aborted;
          },
          signal,
        );
        failures = 0;
        // The watch ended (timeout or 410 Gone; the client does not say which): list again, which is
        // always right and costs one request every few minutes.
        resourceVersion = undefined;
      } catch (error) {
        if (signal.aborted) return;
        failures++;
        const retryInMs = backoffDelay(failures, { baseMs: 250, maxMs: 30_000 });
        this.#options.onError?.(error, retryInMs);
        resourceVersion = undefined;
        await abortableDelay(retryInMs, signal);
      }
    }
  }

  async #relist(signal: AbortSignal): Promise<string> {
    const seen = new Set<string>();
    let continueToken: string | undefined;
    let listVersion = "";
    do {
      const response = await this.#options.client.request<{
        metadata?: { resourceVersion?: string; continue?: string };
        items?: LiveObject[];
      }>({
        method: "GET",
        path: this.#options.path,
        query: { labelSelector: this.#options.labelSelector, limit: "500", continue: continueToken },
        signal,
      });
      for (const item of response.body.items ?? []) {
        seen.add(objectKey(item.metadata));
        this.#put(item);
      }
      listVersion = response.body.metadata?.resourceVersion ?? listVersion;
      continueToken = response.body.metadata?.continue || undefined;
    } while (continueToken);
    for (const [key, object] of this.#cache) if (!seen.has(key)) this.#remove(object);
    return listVersion;
  }

  #put(object: LiveObject): void {
    const key = objectKey(object.metadata);
    const previous = this.#cache.get(key);
    if (previous?.metadata.resourceVersion === object.metadata.resourceVersion) return;
    this.#cache.set(key, object);
    this.#options.onChange(previous ? "updated" : "added", object, previous);
  }

  #remove(object: LiveObject): void {
    const key = objectKey(object.metadata);
    const previous = this.#cache.get(key);
    if (!previous) return;
    this.#cache.delete(key);
    this.#options.onChange("deleted", previous);
  }
}
