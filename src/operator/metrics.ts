// `berth operator`'s Prometheus metrics, in a registry of its own (never prom-client's global one, so
// several operators can live in one process): leadership, reconciles, the work queue, the cache.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

// A reconcile is a few API calls (ms) up to a slow apply or prune against a busy API server (a minute).
export const RECONCILE_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What the gauges show, read at scrape time so they are never stale. */
export interface OperatorGauges {
  leading: boolean;
  /** Keys queued or being reconciled. */
  queueDepth: number;
  /** ModelDeployments in the informer's cache (0 while not leading: there is no cache). */
  resources: number;
}

export interface OperatorMetrics {
  readonly registry: Registry;
  recordReconcile(result: "success" | "error", seconds: number): void;
}

export function createOperatorMetrics(read: () => OperatorGauges): OperatorMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  const reconciles = new Counter({
    name: "berth_operator_reconcile_total",
    help: "ModelDeployment reconciles, by result (error: retried with backoff)",
    labelNames: ["result"] as const,
    registers,
  });
  // Both results exist from the start: a rate() over a series that appears late misses its first step.
  reconciles.inc({ result: "success" }, 0);
  reconciles.inc({ result: "error" }, 0);
  const reconcileSeconds = new Histogram({
    name: "berth_operator_reconcile_seconds",
    help: "Duration of one ModelDeployment reconcile",
    buckets: RECONCILE_SECONDS_BUCKETS,
    registers,
  });
  const gauge = (name: string, help: string, value: (gauges: OperatorGauges) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value(read()));
      },
    });
  gauge("berth_operator_leader", "1 while this operator holds the Lease and reconciles, else 0", (gauges) =>
    gauges.leading ? 1 : 0,
  );
  gauge(
    "berth_operator_queue_depth",
    "ModelDeployments queued or being reconciled",
    (gauges) => gauges.queueDepth,
  );
  gauge("berth_operator_resources", "ModelDeployments in the operator's cache", (gauges) => gauges.resources);
  return {
    registry,
    recordReconcile(result, seconds) {
      reconciles.inc({ result });
      reconcileSeconds.observe(seconds);
    },
  };
}
