// The runtime interface: where replicas live (local child processes, Kubernetes objects).
// The controller drives replicas only through this; it never knows which runtime it holds.
import type { ModelDeployment } from "../spec/index.js";

/**
 * starting: launched, not serving yet. ready: answers /readyz, may take traffic.
 * draining: asked to stop (SIGTERM or equivalent), finishing in-flight work.
 * restarting: it died unexpectedly and the runtime will start it again after a backoff.
 * crash-looping: restarting, after several failures in a row; `lastLogLines` says why.
 * unresponsive: was ready, its health check stopped answering (hung, SIGSTOP): out of rotation at
 *   once, killed and restarted if it does not recover, back to ready if it does.
 * stopped: gone after a stop request (a runtime drops such replicas from `list()` soon after).
 */
export type ReplicaState =
  | "starting"
  | "ready"
  | "unresponsive"
  | "draining"
  | "restarting"
  | "crash-looping"
  | "stopped";

/** What a runtime needs to start one replica of a model at a spec generation. */
export interface ReplicaTemplate {
  deployment: ModelDeployment;
  /** Increases with every spec change of this model (rolling updates compare it). */
  generation: number;
  /**
   * The model source as this machine resolved it (a local file path for the local runtime).
   * A runtime that fetches the weights where the replica runs (Kubernetes) uses the spec's source.
   */
  resolvedModel?: string;
}

export interface ReplicaExit {
  at: number;
  code: number | null;
  signal: string | null;
}

export interface ObservedReplica {
  /** Stable across restarts of the same replica. */
  id: string;
  /** metadata.name of the deployment. */
  model: string;
  generation: number;
  state: ReplicaState;
  /** Base URL once known, e.g. http://127.0.0.1:41234. */
  url?: string;
  port?: number;
  /** Process id (local) while the replica runs. */
  pid?: number;
  /** Times the runtime restarted it after an unexpected exit. */
  restarts: number;
  /** ms since epoch: creation of the replica, and start of the current attempt. */
  createdAt: number;
  startedAt: number;
  readyAt?: number;
  lastExit?: ReplicaExit;
  /** Why it is not ready (e.g. "exited with code 1; restarting in 2000 ms"). */
  message?: string;
  /** The last lines the replica logged before it died (crash-looping, restarting). */
  lastLogLines?: string[];
}

export interface LogLine {
  replicaId: string;
  line: string;
}

export interface LogOptions {
  /** Keep streaming new lines (and new replicas' lines) until the signal aborts. */
  follow?: boolean;
  /** Lines from the end of each replica's log to start with; default 100. */
  tailLines?: number;
  signal?: AbortSignal;
}

export interface StopOptions {
  /** After this long a replica that has not exited is killed; default: the runtime's. */
  graceMs?: number;
}

export interface Runtime {
  /** "local", "kubernetes": for status output only. */
  readonly kind: string;
  /** Creates a replica and begins starting it; resolves once launched (state "starting"). */
  startReplica(template: ReplicaTemplate): Promise<ObservedReplica>;
  /** Graceful stop: the replica drains its in-flight work and exits; resolves when it is gone. */
  stopReplica(id: string, options?: StopOptions): Promise<void>;
  /** Every replica the runtime holds now (snapshots). */
  listReplicas(): ObservedReplica[];
  /** Called whenever a replica changes state, address or process. Returns an unsubscribe function. */
  onChange(listener: (replica: ObservedReplica) => void): () => void;
  /** Log lines of a model's replicas (those of this run), oldest first per replica. */
  logs(model: string, options?: LogOptions): AsyncIterable<LogLine>;
  /** Stops every replica (gracefully, then by force) and releases the runtime. */
  close(options?: StopOptions): Promise<void>;
}
