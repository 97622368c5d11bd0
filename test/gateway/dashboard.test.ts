// The dashboard in a real browser (Debian's headless Chromium through playwright-core): the page the
// gateway serves at / shows each model's replicas with their state and follows changes by polling,
// under a strict Content-Security-Policy that the page never violates. The replicas are stand-in HTTP
// servers: the page only reads what the directory and gateway report (test/up/console.test.ts drives
// the whole console against a real berth up).
import type { Browser } from "playwright-core";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildGateway, type Gateway } from "../../src/gateway/app.js";
import {
  hasChromium,
  launchChromium,
  seriousAccessibilityViolations,
  watchCspViolations,
} from "../support/chromium.js";
import {
  captureLogger,
  deployment,
  echoHandler,
  type FakeUpstream,
  MemoryDirectory,
  startFakeUpstream,
  upstream,
} from "./fixtures.js";

const MARKUP_NAME = '<img id="injected" src="/x" alt="x">';

describe("dashboard assets", () => {
  it("serves uPlot from node_modules and nothing outside its list, with the policy on every file", async () => {
    const gateway = await buildGateway({
      directory: new MemoryDirectory(),
      logger: captureLogger().logger,
      port: 0,
    });
    try {
      const uplot = await gateway.app.inject({ method: "GET", url: "/console/vendor/uPlot.esm.js" });
      expect(uplot.statusCode).toBe(200);
      expect(uplot.headers["content-type"]).toContain("text/javascript");
      expect(uplot.headers["content-security-policy"]).toContain("default-src 'self'");
      expect(uplot.body).toContain("export { uPlot as default }");
      const css = await gateway.app.inject({ method: "GET", url: "/console/console.css" });
      expect(css.headers["content-type"]).toContain("text/css");
      for (const path of ["/console/routes.ts", "/console/../package.json", "/console/vendor/uPlot.cjs.js"]) {
        expect((await gateway.app.inject({ method: "GET", url: path })).statusCode).toBe(404);
      }
    } finally {
      await gateway.close();
    }
  });
});

describe.skipIf(!hasChromium)("dashboard", () => {
  let browser: Browser;
  let gateway: Gateway;
  let replica: FakeUpstream;
  let url: string;
  const directory = new MemoryDirectory();

  beforeAll(async () => {
    replica = await startFakeUpstream(echoHandler("r1"));
    directory.addModel("gpt2", {
      upstreams: [
        upstream("gpt2-1", replica.url, "gpt2"),
        upstream("gpt2-2", replica.url, "gpt2", "starting"),
      ],
    });
    directory.addModel("empty-model");
    // Names are data: shown as text, never parsed as markup.
    directory.addModel(MARKUP_NAME);
    gateway = await buildGateway({ directory, logger: captureLogger().logger, port: 0 });
    url = await gateway.listen();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await replica?.close();
  });

  it("shows every model's replicas and follows their state", async () => {
    const answered = await request(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt2", prompt: "hi" }),
    });
    await answered.body.dump();
    expect(answered.statusCode).toBe(200);

    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    watchCspViolations(page, pageErrors);
    const response = await page.goto(url);
    expect(response?.status()).toBe(200);
    expect(await page.title()).toBe("Berth");
    const policy = response?.headers()["content-security-policy"] ?? "";
    expect(policy).toContain("default-src 'self'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).not.toContain("unsafe-inline");
    expect(policy).not.toContain("unsafe-eval");

    const model = page.locator('section[data-model="gpt2"]');
    await model.locator('tr[data-replica="gpt2-1"]').waitFor();
    expect(await model.locator('tr[data-replica="gpt2-1"] .state').textContent()).toBe("ready");
    expect(await model.locator('tr[data-replica="gpt2-2"] .state').textContent()).toBe("starting");
    expect(await model.getByTestId("ready").textContent()).toBe("1 / 2");
    expect(await model.getByTestId("completed").textContent()).toBe("1");
    expect(await model.getByTestId("strategy").textContent()).toBe("least-load");
    expect(await page.locator('section[data-model="empty-model"] .empty').textContent()).toContain(
      "no replicas",
    );
    expect(await page.locator("section.model h3").allTextContents()).toContain(MARKUP_NAME);
    expect(await page.locator("#playground-model option").allTextContents()).toContain(MARKUP_NAME);
    expect(await page.locator("#injected").count()).toBe(0);

    // The page polls: a replica that becomes ready shows up as ready without a reload.
    directory.setState("gpt2", "gpt2-2", "ready");
    await expect
      .poll(() => model.locator('tr[data-replica="gpt2-2"] .state').textContent(), { timeout: 20_000 })
      .toBe("ready");
    expect(await model.getByTestId("ready").textContent()).toBe("2 / 2");
    // A bare gateway keeps no history: the page says so instead of drawing empty charts.
    await page.locator("#history-note").waitFor({ state: "visible" });
    expect(await page.locator("#history-note").textContent()).toContain("no history");
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it("asks for an API key when auth is on, and shows the replicas with it", async () => {
    const protectedDirectory = new MemoryDirectory().addModel("gpt2", {
      deployment: deployment("gpt2", { auth: { enabled: true, apiKeysFrom: "env:DASHBOARD_KEYS" } }),
      upstreams: [upstream("gpt2-1", replica.url, "gpt2")],
    });
    const guarded = await buildGateway({
      directory: protectedDirectory,
      logger: captureLogger().logger,
      port: 0,
      keySources: { env: { DASHBOARD_KEYS: "ops sk-dashboard-1" }, readFile: async () => "" },
    });
    try {
      const guardedUrl = await guarded.listen();
      expect((await request(`${guardedUrl}/api/status`)).statusCode).toBe(401);
      const page = await browser.newPage();
      await page.goto(guardedUrl);
      await page.locator("#key-form").waitFor({ state: "visible" });
      expect(await page.locator("tr[data-replica]").count()).toBe(0);
      await page.locator("#key").fill("sk-dashboard-1");
      await page.locator("#key-form button").click();
      await page.locator('tr[data-replica="gpt2-1"]').waitFor();
      expect(await page.getByTestId("auth").textContent()).toBe("API keys");
    } finally {
      await guarded.close();
    }
  });
});
