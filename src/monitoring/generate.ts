// `npm run monitoring:generate`: writes the dashboard JSON and the alert rule file into
// deploy/monitoring/ (committed, for people who import them by hand; a test fails when they are stale).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ruleFileText } from "./alerts.js";
import { dashboardJson } from "./dashboard.js";

export const MONITORING_DIR = "deploy/monitoring";
export const DASHBOARD_FILE = "berth-dashboard.json";
export const RULES_FILE = "berth-alerts.rules.yaml";

export function generatedFiles(): Map<string, string> {
  return new Map([
    [DASHBOARD_FILE, dashboardJson()],
    [RULES_FILE, ruleFileText()],
  ]);
}

if (process.argv[1]?.endsWith("generate.js")) {
  const dir = process.argv[2] ?? MONITORING_DIR;
  for (const [name, text] of generatedFiles()) {
    writeFileSync(join(dir, name), text);
    process.stdout.write(`wrote ${join(dir, name)}\n`);
  }
}
