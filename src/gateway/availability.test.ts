// Fail fast on a model that cannot serve: the gateway in-process over an in-memory directory that
// reports a crash loop (the controller's own rule is tested in src/control/controller.test.ts and
// end to end with real replicas in test/up/chaos.test.ts).
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import {
  captureLogger,
  echoHandler,
  MemoryDirectory,
  startFakeUpstream,
  upstream,
  waitUntil,
} from "../../test/gateway/fixtures.js";
import { buildGateway, type Gateway } from "./app.js";
import type { ModelUnavailable } from "./directory.js";

/** A directory whose models the test can mark unavailable (as the controller does for a crash loop). */
class FailingDirectory extends MemoryDirectory {
  private readonly reasons = new Map<string, string>();

  fail(model: string, reason: string): void {
    this.reasons.set(model, reason);
    this.setUpstreams(model, [...this.upstreams(model)]); // notifies listeners
  }

  unavailable(model: string): ModelUnavailable | undefined {
    const reason = this.reasons.get(model);
    return reason === undefined ? undefined : { reason };
  }
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function gateway(directory: MemoryDirectory): Promise<{ gateway: Gateway; url: string }> {
  const built = await buildGateway({
    directory,
    logger: captureLogger().logger,
    port: 0,
    dashboard: false,
    shutdownGraceMs: 2_000,
    // Long enough that a test passing on a timeout would be seen hanging, not passing.
    hold: { holdTimeoutMs: 600_000 },
  });
  const url = await built.listen();
  cleanups.push(() => built.close());
  return { gateway: built, url };
}

async function complete(url: string, model: string) {
  const response = await request(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: "hi", max_tokens: 2 }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, json: JSON.parse(text) };
}

async function readyz(url: string) {
  const response = await request(`${url}/readyz`);
  return { status: response.statusCode, json: (await response.body.json()) as Record<string, unknown> };
}

const REASON = 'every replica of model "m" is crash-looping (m-1 exited with code 1; restart 4 in 4000 ms)';

describe("a model that cannot serve", () => {
  it("is answered at once with 503 BERTH_MODEL_UNAVAILABLE, Retry-After and the reason", async () => {
    const directory = new FailingDirectory().addModel("m", {
      upstreams: [upstream("m-1", "http://127.0.0.1:1", "m", "failed")],
    });
    directory.fail("m", REASON);
    const { url } = await gateway(directory);
    const answer = await complete(url, "m");
    expect(answer.status).toBe(503);
    expect(answer.headers["retry-after"]).toMatch(/^\d+$/);
    expect(answer.json.error.code).toBe("BERTH_MODEL_UNAVAILABLE");
    expect(answer.json.error.type).toBe("server_error");
    expect(answer.json.error.message).toContain("crash-looping");
    expect(answer.json.error.message).toContain("exited with code 1");
  });

  it("releases requests held for it with that answer when it becomes unavailable", async () => {
    const directory = new FailingDirectory().addModel("m", {
      upstreams: [upstream("m-1", "http://127.0.0.1:1", "m", "starting")],
    });
    const { gateway: built, url } = await gateway(directory);
    const held = [complete(url, "m"), complete(url, "m")];
    await waitUntil(() => built.load.load("m").held === 2, "two held requests");
    directory.fail("m", REASON);
    for (const answer of await Promise.all(held)) {
      expect(answer.status).toBe(503);
      expect(answer.json.error.code).toBe("BERTH_MODEL_UNAVAILABLE");
      expect(answer.headers["retry-after"]).toBeDefined();
    }
    expect(built.load.load("m").held).toBe(0);
  });

  it("shows per-model readiness in /readyz, which is 503 only while no model can serve", async () => {
    const fake = await startFakeUpstream(echoHandler("b"));
    cleanups.push(() => fake.close());
    const directory = new FailingDirectory()
      .addModel("m", { upstreams: [upstream("m-1", "http://127.0.0.1:1", "m", "failed")] })
      .addModel("b", { upstreams: [upstream("b-1", fake.url, "b")] });
    directory.fail("m", REASON);
    const { url } = await gateway(directory);
    let probe = await readyz(url);
    expect(probe.status).toBe(200);
    expect(probe.json.models).toEqual({
      m: { readyReplicas: 0, available: false, reason: REASON },
      b: { readyReplicas: 1, available: true },
    });
    // The other model still serves.
    expect((await complete(url, "b")).status).toBe(200);
    directory.fail("b", 'every replica of model "b" is crash-looping');
    directory.setState("b", "b-1", "failed");
    probe = await readyz(url);
    expect(probe.status).toBe(503);
    expect(probe.json.status).toBe("unavailable");
  });

  it("still holds a model whose replicas are only starting (scale from zero is not a failure)", async () => {
    const fake = await startFakeUpstream(echoHandler("a"));
    cleanups.push(() => fake.close());
    const directory = new FailingDirectory().addModel("m");
    const { gateway: built, url } = await gateway(directory);
    expect((await readyz(url)).status).toBe(200);
    const held = complete(url, "m");
    await waitUntil(() => built.load.load("m").held === 1, "a held request");
    directory.setUpstreams("m", [upstream("m-1", fake.url, "m")]);
    expect((await held).status).toBe(200);
  });
});
