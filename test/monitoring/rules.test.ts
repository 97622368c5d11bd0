// The committed Grafana dashboard and alert rules are what src/monitoring generates (regenerate with
// `npm run monitoring:generate`), and promtool accepts the rules and passes their unit tests
// (deploy/monitoring/tests: every alert firing for one model and silent for another).
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import {
  PROMETHEUS_CONFIG,
  prometheusConfig,
  REPLICA_TARGETS,
  replicaTargets,
  RULES_FILE as UP_RULES_FILE,
} from "../../src/cli/up-prometheus.js";
import { renderDeployment } from "../../src/k8s/render.js";
import { ALERTS, ruleFileText, ruleGroups } from "../../src/monitoring/alerts.js";
import { panelQueries } from "../../src/monitoring/dashboard.js";
import { generatedFiles, MONITORING_DIR, RULES_FILE } from "../../src/monitoring/generate.js";
import { parseSpecText } from "../../src/spec/load.js";

const run = promisify(execFile);
const PROMTOOL = "/usr/bin/promtool";
// CI installs Debian's prometheus (which ships promtool); elsewhere the promtool checks are skipped.
const runPromtool = existsSync(PROMTOOL) || process.env.CI === "true";

describe("deploy/monitoring", () => {
  it("holds the generated dashboard and rule file, up to date", () => {
    for (const [name, text] of generatedFiles()) {
      const committed = readFileSync(join(MONITORING_DIR, name), "utf8");
      expect(committed, `${name} is stale: run npm run monitoring:generate`).toBe(text);
    }
  });

  it("has a unit test firing and one not firing for every alert", () => {
    const tests = readFileSync(join(MONITORING_DIR, "tests", "berth-alerts.test.yaml"), "utf8");
    for (const alert of ALERTS) {
      expect(tests).toContain(`alertname: ${alert.name}\n        exp_alerts: []`);
      expect(tests).toMatch(
        new RegExp(`alertname: ${alert.name}\\n        exp_alerts:\\n          - exp_labels`),
      );
    }
    expect(ruleGroups().groups[0]?.rules).toHaveLength(ALERTS.length);
  });

  it("has panels for every area the dashboard must show", () => {
    const text = panelQueries()
      .map((query) => query.expr)
      .join("\n");
    for (const metric of [
      "berth_requests_total",
      "berth_time_to_first_token_seconds_bucket",
      "berth_inter_token_latency_seconds_bucket",
      "berth_request_duration_seconds_bucket",
      "berth_generated_tokens_total",
      "berth_requests_waiting",
      "berth_requests_running",
      "berth_prompt_tokens_cached_total",
      "berth_autoscaler_desired_replicas",
      "berth_controller_events_total",
      "berth_upstream_requests_in_flight",
    ])
      expect(text).toContain(metric);
  });

  describe.skipIf(!runPromtool)("promtool", () => {
    it("checks the rule file", async () => {
      const { stdout } = await run(PROMTOOL, ["check", "rules", join(MONITORING_DIR, RULES_FILE)]);
      expect(stdout).toContain(`SUCCESS: ${ALERTS.length} rules found`);
    });

    it("checks the alerts of a PrometheusRule that berth render writes for one model", async () => {
      const [deployment] = parseSpecText(
        `apiVersion: berth.dev/v1alpha1\nkind: ModelDeployment\nmetadata: { name: llama }\nspec:\n  model: { source: "file:///m.gguf", servedName: "llama-3" }\n  kubernetes: { image: "registry.example/berth:1", serviceMonitor: true }\n`,
      );
      if (!deployment) throw new Error("no deployment");
      const rule = renderDeployment(deployment).find((object) => object.kind === "PrometheusRule");
      const dir = mkdtempSync(join(tmpdir(), "berth-rules-"));
      const file = join(dir, "rules.yaml");
      writeFileSync(file, stringify(rule?.spec));
      const { stdout } = await run(PROMTOOL, ["check", "rules", file]);
      expect(stdout).toContain(`SUCCESS: ${ALERTS.length} rules found`);
      expect(JSON.stringify(rule?.spec)).toContain('model=\\"llama-3\\"');
    });

    it("accepts the Prometheus config berth up --prometheus writes (with its rules and replica targets)", async () => {
      const dir = mkdtempSync(join(tmpdir(), "berth-promconfig-"));
      writeFileSync(
        join(dir, PROMETHEUS_CONFIG),
        prometheusConfig({ gatewayUrl: "http://127.0.0.1:8080", scrapeInterval: "5s" }),
      );
      writeFileSync(join(dir, UP_RULES_FILE), ruleFileText());
      writeFileSync(
        join(dir, REPLICA_TARGETS),
        replicaTargets([
          { id: "tiny-b", url: "http://127.0.0.1:4002" },
          { id: "tiny-a", url: "http://127.0.0.1:4001" },
        ]),
      );
      const { stdout } = await run(PROMTOOL, ["check", "config", join(dir, PROMETHEUS_CONFIG)]);
      expect(stdout).toContain("SUCCESS");
      expect(stdout).toContain(`SUCCESS: ${ALERTS.length} rules found`);
      expect(JSON.parse(replicaTargets([{ id: "r1", url: "http://127.0.0.1:9/" }]))).toEqual([
        { targets: ["127.0.0.1:9"], labels: { replica: "r1" } },
      ]);
    });

    it("passes the alerts' unit tests", async () => {
      const { stdout } = await run(PROMTOOL, ["test", "rules", "berth-alerts.test.yaml"], {
        cwd: join(MONITORING_DIR, "tests"),
      });
      expect(stdout).toContain("SUCCESS");
    });
  });
});
