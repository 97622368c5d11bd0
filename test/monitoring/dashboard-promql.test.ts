// Proof on a real Prometheus (Debian's package): `berth up --prometheus` starts one that scrapes the
// gateway and both replicas; after real load (completions, streams, a prefix shared between
// prompts, a bad request), every PromQL expression of the Grafana dashboard's panels and of every
// alert's signal must evaluate without error AND return series (so every metric name exists), the
// dashboard's variables must have values, and Prometheus must have loaded every alert rule.
import { existsSync } from "node:fs";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALERTS, alertExpression } from "../../src/monitoring/alerts.js";
import { panelQueries, variableQueries } from "../../src/monitoring/dashboard.js";
import { freePort } from "../support/net.js";
import { type BerthUp, specText, startBerthUp, waitFor } from "../up/harness.js";

const PROMETHEUS = "/usr/bin/prometheus";
const MODEL = "tiny";

interface QueryAnswer {
  status: string;
  error?: string;
  data?: { result?: unknown[] };
}

/** Grafana's variables as Prometheus can take them: every model and replica, a 1m rate window. */
function substitute(expr: string): string {
  return expr.replaceAll("$__rate_interval", "1m").replaceAll("$model", ".*").replaceAll("$replica", ".*");
}

describe.skipIf(!existsSync(PROMETHEUS))("the dashboard and alerts on a real Prometheus", () => {
  let up: BerthUp;
  let prometheusUrl: string;

  const query = async (expr: string): Promise<QueryAnswer> => {
    const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await response.json()) as QueryAnswer;
  };
  const scalar = async (expr: string): Promise<number | undefined> => {
    const answer = await query(expr);
    const first = answer.data?.result?.[0] as { value?: [number, string] } | undefined;
    return first?.value ? Number(first.value[1]) : undefined;
  };

  beforeAll(async () => {
    const port = await freePort();
    up = await startBerthUp(specText({ name: MODEL, replicas: "{ min: 2, max: 2 }", parallel: 2 }), [
      "--prometheus",
      "--prometheus-port",
      String(port),
      "--scrape-interval",
      "1s",
    ]);
    prometheusUrl = await waitFor(
      "berth up to say where Prometheus listens",
      async () => /prometheus on (http:\/\/\S+)/.exec(up.stdout())?.[1],
      30_000,
    );
    await up.waitForStatus("both replicas ready", (status) => status.models[0]?.ready === 2);
    await waitFor(
      "Prometheus to scrape the gateway and both replicas",
      async () =>
        (await scalar('count(up{job=~"berth-gateway|berth-replicas"} == 1)')) === 3 ? true : undefined,
      60_000,
      250,
    );
  });

  afterAll(async () => {
    await up?.cleanup();
  });

  it("evaluates every panel and alert expression to series after real load", async () => {
    const client = new OpenAI({ baseURL: `${up.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const shared = "The harbour master keeps a list of every ship in port and the berth it is moored at. ";
    for (let round = 0; round < 3; round++) {
      await Promise.all([
        client.completions.create({ model: MODEL, prompt: `${shared}Ship ${round}:`, max_tokens: 4 }),
        client.completions.create({ model: MODEL, prompt: `${shared}Berth ${round}:`, max_tokens: 4 }),
        (async () => {
          const stream = await client.chat.completions.create({
            model: MODEL,
            messages: [{ role: "user", content: `Hello ${round}` }],
            max_tokens: 6,
            stream: true,
          });
          for await (const _chunk of stream) {
            // drained: tokens arrive one by one (inter-token latency)
          }
        })(),
      ]);
    }
    // A request the replica refuses: the errors panel has a 4xx series.
    const bad = await fetch(`${up.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "x", max_tokens: -1 }),
    });
    expect(bad.status).toBe(400);

    await waitFor(
      "Prometheus to scrape the requests at the replicas and the gateway",
      async () => {
        const atReplicas = await scalar('sum(berth_requests_total{job="berth-replicas"})');
        const atGateway = await scalar('sum(berth_requests_total{job="berth-gateway"})');
        return (atReplicas ?? 0) >= 10 && (atGateway ?? 0) >= 10 ? true : undefined;
      },
      60_000,
      250,
    );

    const expressions = [
      ...panelQueries().map((panel) => ({ what: `panel "${panel.panel}"`, expr: substitute(panel.expr) })),
      ...ALERTS.map((alert) => ({ what: `alert ${alert.name} (signal)`, expr: alert.signal })),
    ];
    const evaluateAll = async (): Promise<string[]> => {
      const failures: string[] = [];
      for (const { what, expr } of expressions) {
        const answer = await query(expr);
        if (answer.status !== "success")
          failures.push(`${what}: ${answer.error ?? answer.status}\n  ${expr}`);
        else if ((answer.data?.result?.length ?? 0) === 0) failures.push(`${what}: no series\n  ${expr}`);
      }
      // The full alert expressions (thresholds, `and` clauses) may be empty, but must not error.
      for (const alert of ALERTS) {
        const answer = await query(alertExpression(alert));
        if (answer.status !== "success")
          failures.push(`alert ${alert.name}: ${answer.error ?? answer.status}`);
      }
      for (const variable of variableQueries()) {
        const selector = encodeURIComponent(substitute(variable.selector));
        const response = await fetch(
          `${prometheusUrl}/api/v1/label/${variable.label}/values?match[]=${selector}`,
        );
        const values = ((await response.json()) as { data?: string[] }).data ?? [];
        if (values.length === 0)
          failures.push(`variable ${variable.name}: no values for ${variable.selector}`);
      }
      return failures;
    };
    // A series that appeared in the last scrape has one sample, too few for rate(): evaluate again
    // until two scrapes have seen it (or the deadline, with the last failures in the assertion).
    let failures: string[] = [];
    await waitFor(
      "every expression to return series",
      async () => {
        failures = await evaluateAll();
        return failures.length === 0 ? true : undefined;
      },
      20_000,
      500,
    ).catch(() => undefined);
    expect(failures).toEqual([]);
    expect(expressions.length).toBeGreaterThanOrEqual(20);

    // Values that the load must have produced, not just series: prefix reuse and a replica breakdown.
    expect(await scalar('sum(berth_prompt_tokens_cached_total{job="berth-replicas"})')).toBeGreaterThan(0);
    expect(await scalar('count(count by (replica) (berth_requests_total{job="berth-replicas"}))')).toBe(2);
    expect(await scalar(`max(berth_autoscaler_desired_replicas{model="${MODEL}"})`)).toBe(2);
  });

  it("loads every alert rule from the file berth up wrote, and evaluates them without error", async () => {
    const names = ALERTS.map((alert) => alert.name);
    const rules = await waitFor(
      "Prometheus to evaluate Berth's alert rules",
      async () => {
        const response = await fetch(`${prometheusUrl}/api/v1/rules?type=alert`);
        const body = (await response.json()) as {
          data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
        };
        const all = body.data.groups.flatMap((group) => group.rules);
        return all.length === names.length && all.every((rule) => rule.health !== "unknown")
          ? all
          : undefined;
      },
      30_000,
      250,
    );
    expect(rules.map((rule) => rule.name).sort()).toEqual([...names].sort());
    for (const rule of rules) expect(rule, rule.lastError).toMatchObject({ health: "ok" });
  });
});
