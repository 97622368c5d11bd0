// Events on a ModelDeployment (core v1 Events, what `kubectl describe` lists under the object):
// a reason and a message in words. The same event again bumps the count and lastTimestamp of the
// one already written instead of adding another (as client-go's event correlator does), so a
// pod stuck in a crash loop reads "x12 over 5m", not twelve lines.
import { randomBytes } from "node:crypto";
import type { KubeClient } from "../k8s/client.js";
import { K8sError } from "../k8s/errors.js";

export interface EventSubject {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
}

export type EventType = "Normal" | "Warning";

export const EVENT_COMPONENT = "berth-operator";

interface Written {
  name: string;
  count: number;
}

/** Recorded events kept for deduplication; the oldest go first. */
const MAX_REMEMBERED = 4096;

export class EventRecorder {
  readonly #client: KubeClient;
  readonly #instance: string;
  readonly #written = new Map<string, Written>();
  readonly #onError: ((error: unknown) => void) | undefined;

  constructor(client: KubeClient, instance: string, onError?: (error: unknown) => void) {
    this.#client = client;
    this.#instance = instance;
    this.#onError = onError;
  }

  /** Writes the event (or counts it again). Never throws: an event is worth less than the reconcile. */
  async record(subject: EventSubject, type: EventType, reason: string, message: string): Promise<void> {
    const note = message.length > 1024 ? `${message.slice(0, 1021)}...` : message;
    const key = `${subject.uid}|${type}|${reason}|${note}`;
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const path = `/api/v1/namespaces/${encodeURIComponent(subject.namespace)}/events`;
    try {
      const written = this.#written.get(key);
      if (written) {
        const response = await this.#client.request({
          method: "PATCH",
          path: `${path}/${encodeURIComponent(written.name)}`,
          body: { count: written.count + 1, lastTimestamp: now },
          contentType: "application/merge-patch+json",
          allowStatus: [404],
        });
        if (response.status !== 404) {
          written.count++;
          // Most recent last, so eviction takes the event repeated least recently.
          this.#written.delete(key);
          this.#written.set(key, written);
          return;
        }
        // Expired (events live an hour by default): write a new one below.
      }
      const name = `${subject.name}.${randomBytes(8).toString("hex")}`;
      await this.#client.request({
        method: "POST",
        path,
        body: {
          apiVersion: "v1",
          kind: "Event",
          metadata: { name, namespace: subject.namespace },
          involvedObject: {
            apiVersion: subject.apiVersion,
            kind: subject.kind,
            namespace: subject.namespace,
            name: subject.name,
            uid: subject.uid,
          },
          type,
          reason,
          message: note,
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component: EVENT_COMPONENT },
          reportingComponent: EVENT_COMPONENT,
          reportingInstance: this.#instance,
        },
        objectRef: `Event/${name}`,
      });
      this.#written.delete(key);
      this.#written.set(key, { name, count: 1 });
      if (this.#written.size > MAX_REMEMBERED) {
        const oldest = this.#written.keys().next().value;
        if (oldest !== undefined) this.#written.delete(oldest);
      }
    } catch (error) {
      // The namespace is going away, or RBAC lacks events: say so once per failure, go on.
      if (error instanceof K8sError || error instanceof Error) this.#onError?.(error);
    }
  }
}
