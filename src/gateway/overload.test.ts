// A replica whose queue is full (429 BERTH_OVERLOADED) did not start the request: the gateway sends
// it to another replica, and only when every replica refuses does the client get the overload, as
// the replica said it (status, code, message, Retry-After). Fake replicas inject the full queue.
// This was bench:gateway's failure: round-robin onto a replica busy with long requests.
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import {
  captureLogger,
  deployment,
  echoHandler,
  type FakeHandler,
  type FakeUpstream,
  MemoryDirectory,
  startFakeUpstream,
  upstream,
} from "../../test/gateway/fixtures.js";
import { buildGateway } from "./app.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const OVERLOADED_BODY = JSON.stringify({
  error: {
    message: "the engine is at capacity: all 2 slots are busy and 8 requests are waiting",
    type: "rate_limit_error",
    param: null,
    code: "BERTH_OVERLOADED",
  },
});

const overloaded: FakeHandler = (req, res) => {
  if (req.url === "/healthz") return void res.end("ok");
  res.writeHead(429, { "content-type": "application/json", "retry-after": "1" });
  res.end(OVERLOADED_BODY);
};

async function fake(handler: FakeHandler): Promise<FakeUpstream> {
  const started = await startFakeUpstream(handler);
  cleanups.push(() => started.close());
  return started;
}

async function roundRobinGateway(upstreams: FakeUpstream[]) {
  const directory = new MemoryDirectory().addModel("m", {
    // Round-robin, as in bench:gateway: every replica gets its turn, full queue or not.
    deployment: deployment("m", { routing: { strategy: "round-robin" } }),
    upstreams: upstreams.map((fake, index) => upstream(`r${index + 1}`, fake.url)),
  });
  const gateway = await buildGateway({
    directory,
    logger: captureLogger().logger,
    port: 0,
    dashboard: false,
  });
  const url = await gateway.listen();
  cleanups.push(() => gateway.close());
  return { gateway, url, directory };
}

async function complete(url: string) {
  const response = await request(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", prompt: "hi", max_tokens: 2 }),
  });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

describe("a replica with a full queue", () => {
  it("is skipped for another replica, and stays in rotation", async () => {
    const busy = await fake(overloaded);
    const idle = await fake(echoHandler("idle"));
    const { url, gateway } = await roundRobinGateway([busy, idle]);
    for (let i = 0; i < 4; i++) {
      const answer = await complete(url);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.text).replica).toBe("idle");
    }
    // Still tried: a full queue empties, unlike a dead replica (no ejection).
    expect(busy.apiRequests).toBeGreaterThan(0);
    const status = await gateway.app.inject({ method: "GET", url: "/api/status" });
    const replicas = status.json().models[0].replicas as Array<{ id: string; ejectedUntil?: number }>;
    expect(replicas.find((replica) => replica.id === "r1")?.ejectedUntil).toBeUndefined();
  });

  it("passes the overload on, as the replica said it, when every replica refuses", async () => {
    const { url } = await roundRobinGateway([await fake(overloaded), await fake(overloaded)]);
    const answer = await complete(url);
    expect(answer.status).toBe(429);
    expect(answer.headers["retry-after"]).toBe("1");
    expect(answer.text).toBe(OVERLOADED_BODY);
  });
});
