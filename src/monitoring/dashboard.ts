// Berth's Grafana dashboard, built with the typed Grafana Foundation SDK (a dev dependency: only the
// generator and the tests import this file). `npm run monitoring:generate` writes its JSON to deploy/monitoring/.
import {
  DashboardBuilder,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
} from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as TimeseriesPanelBuilder } from "@grafana/grafana-foundation-sdk/timeseries";
import { GATEWAY_JOB, REPLICA_JOB } from "./alerts.js";

export const DASHBOARD_UID = "berth-overview";

// Grafana's own variable syntax, not a template literal.
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable reference
const datasource = { type: "prometheus", uid: "${datasource}" };

// Selectors the panels share: the replicas' own view (engine, tokens, slots) and the gateway's.
const replicas = `job="${REPLICA_JOB}", model=~"$model", replica=~"$replica"`;
const gateway = `job="${GATEWAY_JOB}", model=~"$model"`;
const rate = "$__rate_interval";

interface Query {
  expr: string;
  legend: string;
}

function panel(
  title: string,
  unit: string,
  description: string,
  queries: Query[],
  width = 12,
): TimeseriesPanelBuilder {
  const builder = new TimeseriesPanelBuilder()
    .title(title)
    .description(description)
    .datasource(datasource)
    .unit(unit)
    .min(0)
    .height(8)
    .span(width)
    .fillOpacity(10);
  queries.forEach((query, index) => {
    builder.withTarget(
      new DataqueryBuilder()
        .datasource(datasource)
        .refId(String.fromCharCode(65 + index))
        .expr(query.expr)
        .legendFormat(query.legend),
    );
  });
  return builder;
}

function quantiles(metric: string, selector: string, by: string[] = []): Query[] {
  const groups = ["le", ...by].join(", ");
  const prefix = by.length > 0 ? `{{${by[0]}}} ` : "";
  return [0.5, 0.95, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (${groups}) (rate(${metric}_bucket{${selector}}[${rate}])))`,
    legend: `${prefix}p${Math.round(q * 100)}`,
  }));
}

export function berthDashboard(): DashboardBuilder {
  return new DashboardBuilder("Berth")
    .uid(DASHBOARD_UID)
    .description("LLM serving with Berth: traffic, latency, tokens, queues, replicas and the autoscaler")
    .tags(["berth", "llm"])
    .refresh("10s")
    .time({ from: "now-1h", to: "now" })
    .timezone("browser")
    .withVariable(new DatasourceVariableBuilder("datasource").label("Data source").type("prometheus"))
    .withVariable(
      new QueryVariableBuilder("model")
        .label("Model")
        .datasource(datasource)
        .query(`label_values(berth_requests_total{job=~"${GATEWAY_JOB}|${REPLICA_JOB}"}, model)`)
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue(".*"),
    )
    .withVariable(
      new QueryVariableBuilder("replica")
        .label("Replica")
        .datasource(datasource)
        .query(`label_values(berth_requests_total{job="${REPLICA_JOB}", model=~"$model"}, replica)`)
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue(".*"),
    )
    .withRow(new RowBuilder("Traffic"))
    .withPanel(
      panel(
        "Requests per second",
        "reqps",
        "Requests answered, as the replicas and the gateway count them.",
        [
          {
            expr: `sum by (model) (rate(berth_requests_total{${replicas}}[${rate}]))`,
            legend: "{{model}} replicas",
          },
          {
            expr: `sum by (model) (rate(berth_requests_total{${gateway}}[${rate}]))`,
            legend: "{{model}} gateway",
          },
        ],
      ),
    )
    .withPanel(
      panel(
        "Errors by code",
        "reqps",
        "Requests answered with a 4xx or 5xx status (499: the client left first).",
        [
          {
            expr: `sum by (model, code) (rate(berth_requests_total{${gateway}, code=~"[45].."}[${rate}]))`,
            legend: "{{model}} {{code}} gateway",
          },
          {
            expr: `sum by (model, code) (rate(berth_requests_total{${replicas}, code=~"[45].."}[${rate}]))`,
            legend: "{{model}} {{code}} replicas",
          },
        ],
      ),
    )
    .withRow(new RowBuilder("Latency"))
    .withPanel(
      panel(
        "Time to first token",
        "s",
        "From arrival at the replica to the first generated token, queueing included.",
        quantiles("berth_time_to_first_token_seconds", replicas),
        8,
      ),
    )
    .withPanel(
      panel(
        "Inter-token latency",
        "s",
        "Time between two generated tokens of one request.",
        quantiles("berth_inter_token_latency_seconds", replicas),
        8,
      ),
    )
    .withPanel(
      panel(
        "Request duration (end to end, gateway)",
        "s",
        "From arrival at the gateway to the last byte sent to the client.",
        quantiles("berth_request_duration_seconds", gateway),
        8,
      ),
    )
    .withRow(new RowBuilder("Tokens and capacity"))
    .withPanel(
      panel("Tokens per second", "short", "Prompt tokens read and tokens generated.", [
        {
          expr: `sum by (model) (rate(berth_generated_tokens_total{${replicas}}[${rate}]))`,
          legend: "{{model}} generated",
        },
        {
          expr: `sum by (model) (rate(berth_prompt_tokens_total{${replicas}}[${rate}]))`,
          legend: "{{model}} prompt",
        },
      ]),
    )
    .withPanel(
      panel(
        "KV cache prefix reuse",
        "percentunit",
        "Share of prompt tokens found in a slot's KV cache (not evaluated again).",
        [
          {
            expr: `sum by (model) (rate(berth_prompt_tokens_cached_total{${replicas}}[${rate}])) / sum by (model) (rate(berth_prompt_tokens_total{${replicas}}[${rate}]))`,
            legend: "{{model}}",
          },
        ],
      ),
    )
    .withPanel(
      panel("Queue", "short", "Requests waiting for a slot, and how many may wait before 429.", [
        { expr: `sum by (model) (berth_requests_waiting{${replicas}})`, legend: "{{model}} waiting" },
        { expr: `sum by (model) (berth_requests_waiting_limit{${replicas}})`, legend: "{{model}} limit" },
        {
          expr: `sum by (model) (berth_gateway_requests_held{${gateway}})`,
          legend: "{{model}} held at gateway",
        },
      ]),
    )
    .withPanel(
      panel("Running slots", "short", "Sequences generating now out of the slots the replicas have.", [
        { expr: `sum by (model) (berth_requests_running{${replicas}})`, legend: "{{model}} running" },
        { expr: `sum by (model) (berth_slots{${replicas}})`, legend: "{{model}} slots" },
      ]),
    )
    .withRow(new RowBuilder("Replicas and autoscaler"))
    .withPanel(
      panel("Replicas desired vs ready", "short", "What the autoscaler wants and what serves.", [
        {
          expr: `max by (model) (berth_autoscaler_desired_replicas{${gateway}})`,
          legend: "{{model}} desired",
        },
        { expr: `sum by (model) (berth_replicas{${gateway}, state="ready"})`, legend: "{{model}} ready" },
      ]),
    )
    .withPanel(
      panel(
        "Autoscaler decisions and restarts",
        "short",
        "Scaling decisions, replica restarts and crash loops (berth events says why).",
        [
          {
            expr: `sum by (model, type) (increase(berth_controller_events_total{${gateway}, type=~"autoscale|scale-manual|replica-restarting|replica-crash-looping"}[${rate}]))`,
            legend: "{{model}} {{type}}",
          },
        ],
      ),
    )
    .withRow(new RowBuilder("Per replica"))
    .withPanel(
      panel(
        "Requests per second by replica",
        "reqps",
        "Each replica's share of the traffic.",
        [
          {
            expr: `sum by (model, replica) (rate(berth_requests_total{${replicas}}[${rate}]))`,
            legend: "{{replica}}",
          },
        ],
        8,
      ),
    )
    .withPanel(
      panel(
        "In flight by replica (gateway)",
        "short",
        "Requests the gateway has sent to each replica and not yet finished.",
        [
          {
            expr: `sum by (model, replica) (berth_upstream_requests_in_flight{${gateway}, replica=~"$replica"})`,
            legend: "{{replica}}",
          },
        ],
        8,
      ),
    )
    .withPanel(
      panel(
        "TTFT p95 by replica",
        "s",
        "A slow replica stands out here.",
        [
          {
            expr: `histogram_quantile(0.95, sum by (replica, le) (rate(berth_time_to_first_token_seconds_bucket{${replicas}}[${rate}])))`,
            legend: "{{replica}}",
          },
        ],
        8,
      ),
    );
}

/** The dashboard JSON as committed in deploy/monitoring/berth-dashboard.json. */
export function dashboardJson(): string {
  return `${JSON.stringify(berthDashboard().build(), null, 2)}\n`;
}

/** Every PromQL expression of the dashboard's panels, with the panel title (for the real-Prometheus check). */
export function panelQueries(): Array<{ panel: string; expr: string }> {
  const built = berthDashboard().build() as { panels?: Array<Record<string, unknown>> };
  const out: Array<{ panel: string; expr: string }> = [];
  const visit = (panels: Array<Record<string, unknown>> | undefined): void => {
    for (const item of panels ?? []) {
      visit(item.panels as Array<Record<string, unknown>> | undefined);
      for (const target of (item.targets as Array<{ expr?: string }> | undefined) ?? []) {
        if (target.expr) out.push({ panel: String(item.title), expr: target.expr });
      }
    }
  };
  visit(built.panels);
  return out;
}

/** The `label_values(selector, label)` queries of the dashboard's variables. */
export function variableQueries(): Array<{ name: string; selector: string; label: string }> {
  const built = berthDashboard().build() as {
    templating?: { list?: Array<{ name: string; query?: unknown }> };
  };
  const out: Array<{ name: string; selector: string; label: string }> = [];
  for (const variable of built.templating?.list ?? []) {
    const match =
      typeof variable.query === "string" ? /^label_values\((.*), (\w+)\)$/.exec(variable.query) : null;
    if (match) out.push({ name: variable.name, selector: match[1] ?? "", label: match[2] ?? "" });
  }
  return out;
}
