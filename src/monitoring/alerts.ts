// Berth's Prometheus alerts, as data: one source for the rule file in deploy/monitoring/, the
// PrometheusRule objects of `berth render` / the Helm chart, and `berth up --prometheus`.
// Each alert is a signal (a PromQL expression that always has series while Berth runs) compared with
// a threshold, so the real-Prometheus test can prove every signal's metric names exist.
import { stringify } from "yaml";

/** Job labels Berth's scrape configs give the gateway and the replicas (ServiceMonitor relabels to them). */
export const GATEWAY_JOB = "berth-gateway";
export const REPLICA_JOB = "berth-replicas";

export interface BerthAlert {
  name: string;
  /** PromQL that yields one series per model while Berth runs (no threshold applied). */
  signal: string;
  /** The comparison that makes the signal an alert, e.g. "> 0.05". */
  condition: string;
  /** A second clause joined with `and` (e.g. "the model had traffic before"); not part of the signal. */
  and?: string;
  for: string;
  severity: "warning" | "critical";
  summary: string;
  /** What a person does next. */
  description: string;
}

type Selector = (metric: string, matchers?: string) => string;

// Error ratio per model as each job sees it (the gateway's view includes requests no replica saw);
// the worst view wins, so it works with or without a gateway in front. `or 0 * ...` keeps a series
// (of 0) for models without any 5xx yet.
const errorRatio = (m: Selector): string => `max by (model) (
  (
    sum by (model, job) (rate(${m("berth_requests_total", 'code=~"5.."')}[5m]))
    or
    0 * sum by (model, job) (rate(${m("berth_requests_total")}[5m]))
  )
  /
  sum by (model, job) (rate(${m("berth_requests_total")}[5m]))
)`;

const ttftP95 = (m: Selector): string => `max by (model) (
  histogram_quantile(0.95, sum by (model, job, le) (rate(${m("berth_time_to_first_token_seconds_bucket")}[5m])))
)`;

/**
 * Berth's alerts; `scope` adds label matchers to every selector (e.g. `model="llama"` for the
 * PrometheusRule of one Kubernetes deployment), so each deployment owns the alerts of its model.
 */
export function berthAlerts(scope = ""): BerthAlert[] {
  const m: Selector = (metric, matchers = "") => {
    const all = [matchers, scope].filter((part) => part.length > 0).join(", ");
    return all.length > 0 ? `${metric}{${all}}` : metric;
  };
  return [
    {
      name: "BerthHighErrorRate",
      signal: errorRatio(m),
      condition: "> 0.05",
      for: "5m",
      severity: "critical",
      summary: "More than 5% of requests to model {{ $labels.model }} fail with 5xx",
      description:
        "{{ $value | humanizePercentage }} of requests to {{ $labels.model }} answered 5xx over 5 minutes. " +
        "Look at `berth events` and `berth logs {{ $labels.model }}` (or the replicas' pod logs) for crashes, " +
        "timeouts or overload; the request id in a failed response finds its log lines.",
    },
    {
      name: "BerthSlowTimeToFirstToken",
      signal: ttftP95(m),
      condition: "> 2",
      for: "10m",
      severity: "warning",
      summary: "p95 time to first token of model {{ $labels.model }} is above 2 s",
      description:
        "p95 TTFT is {{ $value | humanizeDuration }}. Requests queue for a slot: raise replicas.max or " +
        "engine.parallel, or lower autoscaling.targetInFlight so the autoscaler adds replicas sooner.",
    },
    {
      name: "BerthQueueSaturated",
      signal: `sum by (model) (${m("berth_requests_waiting")}) / sum by (model) (${m("berth_requests_waiting_limit")})`,
      condition: "> 0.8",
      for: "5m",
      severity: "warning",
      summary: "The wait queue of model {{ $labels.model }} is over 80% full",
      description:
        "{{ $value | humanizePercentage }} of the queue is in use; beyond it requests get 429. " +
        "Add replicas (berth scale, replicas.max) or slots (engine.parallel).",
    },
    {
      name: "BerthReplicasBelowDesired",
      signal: `max by (model) (${m("berth_autoscaler_desired_replicas")}) - sum by (model) (${m("berth_replicas", 'state="ready"')})`,
      condition: "> 0",
      for: "10m",
      severity: "warning",
      summary: "Model {{ $labels.model }} has {{ $value }} fewer ready replicas than desired",
      description:
        "Replicas are not becoming ready: `berth status` shows their state and last log lines " +
        "(on Kubernetes: pending pods lack CPU, memory or GPU; look at `kubectl describe pod`).",
    },
    {
      name: "BerthReplicaCrashLooping",
      signal: `sum by (model) (increase(${m("berth_controller_events_total", 'type=~"replica-restarting|replica-crash-looping"')}[15m]))`,
      condition: ">= 3",
      for: "0m",
      severity: "critical",
      summary: "Replicas of model {{ $labels.model }} keep restarting",
      description:
        "{{ $value }} restarts in 15 minutes. `berth status` prints a crash-looping replica's last log lines; " +
        "a model file that does not load or too little memory are the usual causes.",
    },
    {
      name: "BerthModelNoTraffic",
      signal: `sum by (model) (rate(${m("berth_requests_total")}[10m]))`,
      condition: "== 0",
      and: `sum by (model) (increase(${m("berth_requests_total")}[1h] offset 10m)) > 0`,
      for: "10m",
      severity: "warning",
      summary: "Model {{ $labels.model }} had traffic and now gets none",
      description:
        "No request reached {{ $labels.model }} for 10 minutes after it served requests in the hour before. " +
        "Check the clients, the ingress or load balancer in front of Berth, and the gateway's auth and rate limits.",
    },
  ];
}

export const ALERTS: readonly BerthAlert[] = berthAlerts();

/** The full PromQL of an alert's rule. */
export function alertExpression(alert: BerthAlert): string {
  const main = `(${alert.signal}) ${alert.condition}`;
  return alert.and === undefined ? main : `${main}\nand\n(${alert.and})`;
}

export const RULE_GROUP = "berth";

/** One alerting rule as Prometheus' rule files (and PrometheusRule objects) spell it. */
export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** The `groups:` document Prometheus loads (and a PrometheusRule's spec holds). */
export function ruleGroups(
  alerts: readonly BerthAlert[] = ALERTS,
  groupName = RULE_GROUP,
): { groups: Array<{ name: string; rules: AlertRule[] }> } {
  return {
    groups: [
      {
        name: groupName,
        rules: alerts.map((alert) => ({
          alert: alert.name,
          expr: alertExpression(alert),
          for: alert.for,
          labels: { severity: alert.severity },
          annotations: { summary: alert.summary, description: alert.description },
        })),
      },
    ],
  };
}

/** The rule file's text, as committed in deploy/monitoring/berth-alerts.rules.yaml. */
export function ruleFileText(): string {
  return `# Generated from src/monitoring/alerts.ts by \`npm run monitoring:generate\`; do not edit.\n${stringify(
    ruleGroups(),
    { lineWidth: 0 },
  )}`;
}
