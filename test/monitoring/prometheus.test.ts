// A real Prometheus server (Debian's package) scrapes a real `berth serve` replica: the metric
// names of DESIGN.md must arrive in Prometheus with the values the requests produced.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { freePort } from "../support/net.js";
import { type ServeProcess, startServe, waitFor } from "../support/serve-process.js";

const PROMETHEUS = "/usr/bin/prometheus";

async function query(prometheusUrl: string, promql: string): Promise<number | undefined> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  if (!response.ok) return undefined;
  const body = (await response.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
  const first = body.data?.result?.[0];
  return first ? Number(first.value[1]) : undefined;
}

describe.skipIf(!existsSync(PROMETHEUS))("Prometheus scraping a replica", () => {
  let replica: ServeProcess;
  let prometheus: ChildProcess;
  let prometheusUrl: string;

  beforeAll(async () => {
    const model = await ensureTinyModel({ shape: "tiny", dtype: "q8_0" });
    replica = await startServe(["--model", model, "--model-id", "tiny-gpt2", "--parallel", "2"]);
    const dir = mkdtempSync(join(tmpdir(), "berth-prometheus-"));
    const target = new URL(replica.url).host;
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: berth\n    static_configs:\n      - targets: ["${target}"]\n`,
    );
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: "ignore" },
    );
    await waitFor(
      async () => (await fetch(`${prometheusUrl}/-/ready`).catch(() => undefined))?.ok === true,
      "Prometheus to be ready",
    );
  });

  afterAll(() => {
    prometheus?.kill("SIGKILL");
    replica?.kill();
  });

  it("sees request counts, token counters and latency histograms", async () => {
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${replica.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny-gpt2", prompt: "Hello world", max_tokens: 4, ignore_eos: true }),
      });
      expect(response.status).toBe(200);
    }
    await waitFor(
      async () =>
        (await query(prometheusUrl, 'sum(berth_requests_total{model="tiny-gpt2",code="200"})')) === 3,
      "Prometheus to scrape 3 successful requests",
    );
    expect(await query(prometheusUrl, 'sum(berth_generated_tokens_total{model="tiny-gpt2"})')).toBe(12);
    expect(await query(prometheusUrl, "sum(berth_time_to_first_token_seconds_count)")).toBe(3);
    expect(await query(prometheusUrl, "sum(berth_request_duration_seconds_count)")).toBeGreaterThanOrEqual(3);
    expect(await query(prometheusUrl, 'up{job="berth"}')).toBe(1);
  });
});
