// GET /api/status: models, replicas with state and in-flight requests, ejections, counters — what
// the dashboard polls (rates are computed there from successive `completed` counts).
import type { UpstreamDirectory, UpstreamState } from "./directory.js";
import type { LoadTracker } from "./load.js";
import type { OutlierDetector } from "./outlier.js";
import type { PolicyCache } from "./policy.js";

export interface ReplicaStatus {
  id: string;
  url: string;
  state: UpstreamState;
  generation: number;
  inFlight: number;
  /** ms since epoch until which the gateway skips this replica; absent when not ejected. */
  ejectedUntil?: number;
  ejectionReason?: string;
}

export interface ModelStatus {
  name: string;
  strategy: string;
  authEnabled: boolean;
  inFlight: number;
  held: number;
  completed: number;
  lastRequestAt: number;
  /** False while no replica can become ready (crash loop, failed model); requests get 503 at once. */
  available: boolean;
  unavailableReason?: string;
  replicas: ReplicaStatus[];
}

export interface GatewayStatus {
  time: number;
  models: ModelStatus[];
}

export async function buildStatus(
  directory: UpstreamDirectory,
  load: LoadTracker,
  outliers: OutlierDetector,
  policies: PolicyCache,
  now: number,
): Promise<GatewayStatus> {
  const models: ModelStatus[] = [];
  for (const name of directory.models()) {
    const snapshot = load.load(name);
    const policy = await policies.policy(name).catch(() => undefined);
    const unavailable = directory.unavailable?.(name);
    models.push({
      name,
      strategy: policy?.routing.strategy ?? "least-load",
      authEnabled: policy?.auth.enabled ?? true,
      inFlight: snapshot.inFlight,
      held: snapshot.held,
      completed: snapshot.completed,
      lastRequestAt: snapshot.lastRequestAt,
      available: unavailable === undefined,
      ...(unavailable ? { unavailableReason: unavailable.reason } : {}),
      replicas: directory.upstreams(name).map((upstream) => {
        const ejection = outliers.ejection(upstream.id);
        const ejected = ejection !== undefined && ejection.until > now;
        return {
          id: upstream.id,
          url: upstream.url,
          state: upstream.state,
          generation: upstream.generation,
          inFlight: snapshot.perUpstream[upstream.id] ?? 0,
          ...(ejected ? { ejectedUntil: ejection.until, ejectionReason: ejection.reason } : {}),
        };
      }),
    });
  }
  return { time: now, models };
}
