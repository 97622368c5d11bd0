// The web console end to end: a real `berth up` (GPT-2-124M-shaped model, API keys on) under load
// from the official openai client, and the console in headless Chromium (Debian's, via playwright-core):
// the key prompt, charts drawn from the gateway's history of that load, the controller's events, a
// replica's log tail, and the playground streaming a completion and stopping it, with the replica's
// slot freed (its /metrics). No CSP violation, no serious accessibility violation (axe-core).
// Screenshots go to .berth/artifacts/console/ (gitignored) for people to look at.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HistorySnapshot } from "../../src/gateway/history.js";
import { parseReplicaMetrics } from "../../src/gateway/history.js";
import { ensureTinyModel } from "../../src/models/tiny.js";
import {
  hasChromium,
  launchChromium,
  seriousAccessibilityViolations,
  watchCspViolations,
} from "../support/chromium.js";
import { type BerthUp, specText, startBerthUp, waitFor } from "./harness.js";

const ARTIFACTS = join(process.cwd(), ".berth", "artifacts", "console");
const KEY = "sk-console-5e1f0a9b7c3d2e4f";
const MODEL = "gpt2";
// Large enough that a long generation takes many seconds on a shared CPU: Stop lands mid-stream.
const SPEC = specText({
  name: MODEL,
  replicas: "{ min: 1, max: 1 }",
  parallel: 2,
  contextSize: 1024,
  extra: "  auth: { enabled: true, apiKeysFrom: env:BERTH_CONSOLE_KEYS }\n",
}).replace("tiny://tiny?dtype=q8_0", "tiny://gpt2-124m?dtype=q8_0");
const PLAYGROUND_MAX_TOKENS = 1000;

interface ReplicaFigures {
  running: number;
  generated: number;
  closedEarly: number;
}

/** The replica's own counters: slots generating, tokens generated, requests the client left (499). */
async function replicaFigures(replicaUrl: string): Promise<ReplicaFigures> {
  const text = await (await fetch(`${replicaUrl}/metrics`)).text();
  const sample = parseReplicaMetrics(text);
  if (!sample) throw new Error(`no berth metrics at ${replicaUrl}/metrics`);
  let closedEarly = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("berth_requests_total{") && line.includes('code="499"'))
      closedEarly += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return { running: sample.running, generated: sample.generatedTokens, closedEarly };
}

// Code run in the page is written as strings: this project compiles without the DOM library.

/** Distinct pixel rows of a chart's canvas in the series colour: a flat line covers 1–3 rows. */
function seriesRows(
  page: Page,
  model: string,
  chart: string,
  rgb: [number, number, number],
): Promise<number> {
  const selector = `section[data-model="${model}"] figure[data-chart="${chart}"] canvas`;
  return page.evaluate(`(() => {
    const [red, green, blue] = ${JSON.stringify(rgb)};
    const canvas = document.querySelector(${JSON.stringify(selector)});
    const context = canvas && canvas.getContext("2d");
    if (!context) return 0;
    const { data, width, height } = context.getImageData(0, 0, canvas.width, canvas.height);
    let rows = 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const at = (y * width + x) * 4;
        if (Math.abs(data[at] - red) < 40 && Math.abs(data[at + 1] - green) < 40 &&
            Math.abs(data[at + 2] - blue) < 40 && data[at + 3] > 200) {
          rows++;
          break;
        }
      }
    }
    return rows;
  })()`);
}

describe.skipIf(!hasChromium).sequential("the web console on a real berth up", () => {
  let up: BerthUp;
  let browser: Browser;
  let page: Page;
  let replicaId: string;
  let replicaUrl: string;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // Made once into the suite's model cache (minutes cold), so berth up only loads it.
    await ensureTinyModel({ shape: "gpt2-124m", dtype: "q8_0" });
    up = await startBerthUp(SPEC, [], { BERTH_CONSOLE_KEYS: `console ${KEY}` });
    const status = await up.waitForStatus(
      "the replica ready",
      (current) => current.models.every((model) => model.ready === 1),
      240_000,
    );
    const replica = status.models[0]?.replicas[0];
    if (!replica?.url) throw new Error("the replica has no URL");
    replicaId = replica.id;
    replicaUrl = replica.url;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    page.on("pageerror", (error) => pageErrors.push(error.message));
    watchCspViolations(page, cspViolations);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await up?.cleanup();
  }, 120_000);

  it("asks for the API key and keeps it in session storage only", async () => {
    const response = await page.goto(up.url);
    expect(response?.headers()["content-security-policy"]).toContain("default-src 'self'");
    await page.locator("#key-form").waitFor({ state: "visible" });
    await page.screenshot({ path: join(ARTIFACTS, "1-key-prompt.png") });
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    await page.locator("#key").fill(KEY);
    await page.locator("#key-form button[type=submit]").click();
    await page.locator(`section[data-model="${MODEL}"] tr[data-replica="${replicaId}"]`).waitFor();
    expect(await page.locator("#key-form").isHidden()).toBe(true);
    const storage = await page.evaluate(
      `({ session: sessionStorage.getItem("berth-api-key"), local: localStorage.length, cookies: document.cookie })`,
    );
    expect(storage).toEqual({ session: KEY, local: 0, cookies: "" });
  });

  it("draws tokens/s, TTFT, queue and replicas from real load", async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL: `${up.url}/v1`, maxRetries: 0 });
    // Two waves of concurrent requests (more than the 2 slots: some queue), spread over samples.
    for (let wave = 0; wave < 2; wave++) {
      await Promise.all(
        Array.from({ length: 4 }, (_, index) =>
          client.completions.create({
            model: MODEL,
            prompt: `Request ${wave}-${index}: once upon a time`,
            max_tokens: 24,
            ignore_eos: true,
          } as OpenAI.CompletionCreateParamsNonStreaming),
        ),
      );
    }
    const history = await waitFor(
      "the gateway history to hold the load",
      async () => {
        const response = await fetch(`${up.url}/api/history`, {
          headers: { authorization: `Bearer ${KEY}` },
        });
        const snapshot = (await response.json()) as HistorySnapshot;
        const points = snapshot.models[MODEL] ?? [];
        const generating = points.some((point) => point.tokensPerSecond > 0);
        const answering = points.some((point) => point.ttftP50Ms !== null);
        return generating && answering ? snapshot : undefined;
      },
      120_000,
      500,
    );
    const points = history.models[MODEL] ?? [];
    expect(history.intervalMs).toBe(2_000);
    expect(history.capacity).toBe(300);
    expect(points.at(-1)).toMatchObject({ desired: 1, ready: 1 });
    const peak = Math.max(...points.map((point) => point.tokensPerSecond));
    expect(peak).toBeGreaterThan(0);
    expect(
      points.every((point) => point.ttftP95Ms === null || (point.ttftP50Ms ?? 0) <= point.ttftP95Ms),
    ).toBe(true);

    // The page redraws from the same history: the tokens/s line leaves the baseline.
    const tokensChart = page.locator(`section[data-model="${MODEL}"] figure[data-chart="tokens"]`);
    await expect
      .poll(async () => Number(await tokensChart.getAttribute("data-points")), { timeout: 30_000 })
      .toBeGreaterThanOrEqual(points.length);
    expect(await seriesRows(page, MODEL, "tokens", [29, 78, 216])).toBeGreaterThan(8);
    // Replicas desired vs ready: both series are drawn (desired purple, ready green).
    expect(await seriesRows(page, MODEL, "replicas", [109, 40, 217])).toBeGreaterThan(0);
    expect(await seriesRows(page, MODEL, "replicas", [21, 128, 61])).toBeGreaterThan(0);
    for (const chart of ["tokens", "ttft", "queue", "replicas"]) {
      expect(
        await page.locator(`section[data-model="${MODEL}"] figure[data-chart="${chart}"] canvas`).count(),
      ).toBe(1);
    }
    expect(await tokensChart.locator("p.visually-hidden").textContent()).toContain("latest");
    await page
      .locator(`section[data-model="${MODEL}"]`)
      .screenshot({ path: join(ARTIFACTS, "2-charts.png") });
  });

  it("lists the controller's events and tails a replica's log", async () => {
    await page.locator('#events li[data-event="replica-ready"]').first().waitFor();
    expect(await page.locator('#events li[data-event="replica-ready"]').first().textContent()).toContain(
      replicaId,
    );
    await page.locator("#log-replica").selectOption({ label: `${MODEL} · ${replicaId}` });
    await expect
      .poll(() => page.locator("#log-tail").inputValue(), { timeout: 30_000 })
      .toMatch(/ info ready\b/);
    await page.screenshot({ path: join(ARTIFACTS, "3-events-logs.png"), fullPage: true });
  });

  it("streams a completion in the playground and Stop frees the replica's slot", async () => {
    const before = await replicaFigures(replicaUrl);
    expect(before.running).toBe(0);
    await page.locator("#playground-model").selectOption(MODEL);
    await page.locator("#playground-endpoint").selectOption("completion");
    await page.locator("#playground-max-tokens").fill(String(PLAYGROUND_MAX_TOKENS));
    await page.locator("#playground-ignore-eos").check();
    await page.locator("#playground-prompt").fill("The history of the harbour begins");
    await page.locator("#playground-send").click();

    await expect
      .poll(async () => Number(await page.locator("#playground-tokens").textContent()), { timeout: 120_000 })
      .toBeGreaterThanOrEqual(3);
    expect(await page.locator("#playground-state").textContent()).toBe("streaming");
    expect((await page.locator("#playground-output").inputValue()).length).toBeGreaterThan(0);
    expect(await page.locator("#playground-ttft").textContent()).toMatch(/^\d+ ms$/);
    expect(await page.locator("#playground-request-id").textContent()).toMatch(/^[\w.:-]{8,}$/);
    // The generation holds a slot on the replica now, and its tokens are counted as they stream
    // (the live tokens/s chart depends on it).
    await waitFor(
      "the replica to count the streaming generation's tokens",
      async () => {
        const figures = await replicaFigures(replicaUrl);
        return figures.running === 1 && figures.generated > before.generated ? figures : undefined;
      },
      60_000,
      100,
    );
    await page.locator("#playground-stop").click();
    await expect
      .poll(() => page.locator("#playground-state").textContent(), { timeout: 30_000 })
      .toBe("stopped");
    await page.screenshot({ path: join(ARTIFACTS, "4-playground-stopped.png"), fullPage: true });

    const after = await waitFor(
      "the replica to free the slot of the stopped generation",
      async () => {
        const figures = await replicaFigures(replicaUrl);
        return figures.running === 0 && figures.closedEarly === before.closedEarly + 1 ? figures : undefined;
      },
      60_000,
      100,
    );
    const generated = after.generated - before.generated;
    expect(generated).toBeGreaterThanOrEqual(3);
    expect(generated).toBeLessThan(PLAYGROUND_MAX_TOKENS);
    expect(await page.locator("#playground-rate").textContent()).toMatch(/^\d+(\.\d)?$/);
    expect(await page.locator("#playground-send").isEnabled()).toBe(true);

    // The chat endpoint streams too, to its end: the finish reason and the usage-reported count show.
    await page.locator("#playground-endpoint").selectOption("chat");
    await page.locator("#playground-max-tokens").fill("6");
    await page.locator("#playground-send").click();
    await expect
      .poll(() => page.locator("#playground-state").textContent(), { timeout: 120_000 })
      .toBe("done");
    expect(await page.locator("#playground-finish").textContent()).toBe("length");
    expect(await page.locator("#playground-tokens").textContent()).toBe("6");
    expect(await page.locator("#playground-error").textContent()).toBe("");
    // Bad input gets the server's message, in words, and the playground is ready again.
    await page.locator("#playground-max-tokens").fill("5000");
    await page.locator("#playground-send").click();
    await expect
      .poll(() => page.locator("#playground-state").textContent(), { timeout: 60_000 })
      .toBe("failed");
    expect(await page.locator("#playground-error").textContent()).toMatch(/context|max_tokens/i);
    expect(await page.locator("#playground-send").isEnabled()).toBe(true);
  });

  it("has no serious or critical accessibility violation with everything shown (axe-core)", async () => {
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
  });

  it("ran without a CSP violation or a script error, and would have seen one", async () => {
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
    // The detector works: an injected inline script is refused by the policy and reported.
    const probe = await browser.newPage();
    const seen = watchCspViolations(probe);
    await probe.goto(up.url);
    await probe.evaluate(
      `(() => { const script = document.createElement("script"); script.textContent = "window.injected = true"; document.head.append(script); })()`,
    );
    await expect.poll(() => seen.length, { timeout: 30_000 }).toBeGreaterThan(0);
    expect(await probe.evaluate(`window.injected`)).toBeUndefined();
  });
});
