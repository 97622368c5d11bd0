// The gateway in-process against small HTTP servers standing in for replicas. Fakes are used here
// only to inject faults (refused connections, hangs, 503 draining, slow and endless streams) and to
// see exactly what reached a replica; test/gateway/ runs the same paths against real `berth serve`.
import { createHash } from "node:crypto";
import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import {
  captureLogger,
  deployment,
  echoHandler,
  type FakeUpstream,
  MemoryDirectory,
  refusedUrl,
  startFakeUpstream,
  upstream,
  waitUntil,
} from "../../test/gateway/fixtures.js";
import { buildGateway, type Gateway, type GatewayOptions } from "./app.js";
import { GatewayConfigError } from "./errors.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function fake(handler: Parameters<typeof startFakeUpstream>[0]): Promise<FakeUpstream> {
  const started = await startFakeUpstream(handler);
  cleanups.push(() => started.close());
  return started;
}

async function gateway(
  directory: MemoryDirectory,
  options: Partial<GatewayOptions> = {},
): Promise<{ gateway: Gateway; url: string; logs: () => string }> {
  const capture = captureLogger();
  const built = await buildGateway({
    directory,
    logger: capture.logger,
    port: 0,
    dashboard: false,
    shutdownGraceMs: 2_000,
    ...options,
  });
  const url = await built.listen();
  cleanups.push(() => built.close());
  return { gateway: built, url, logs: capture.text };
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await request(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) };
}

describe("routing and forwarding", () => {
  it("routes by the model field and forwards the original bytes", async () => {
    const a = await fake(echoHandler("a"));
    const b = await fake(echoHandler("b"));
    const directory = new MemoryDirectory()
      .addModel("alpha", { upstreams: [upstream("a-1", a.url, "alpha")] })
      .addModel("beta", { upstreams: [upstream("b-1", b.url, "beta")] });
    const { url } = await gateway(directory);
    // Odd spacing and key order: a re-serialised body would differ.
    const raw = '{ "prompt" : "hé\\u0301",  "model":"beta","max_tokens":2 }';
    const answer = await post(`${url}/v1/completions`, raw);
    expect(answer.status).toBe(200);
    expect(answer.json().replica).toBe("b");
    expect(answer.json().body).toBe(raw);
    expect(answer.json().path).toBe("/v1/completions");
    expect(answer.headers["x-berth-replica"]).toBe("b-1");
    expect((await post(`${url}/v1/chat/completions`, { model: "alpha", messages: [] })).json().replica).toBe(
      "a",
    );
  });

  it("answers an unknown model with 404 BERTH_MODEL_NOT_FOUND in OpenAI's shape", async () => {
    const a = await fake(echoHandler("a"));
    const { url } = await gateway(
      new MemoryDirectory().addModel("alpha", { upstreams: [upstream("a-1", a.url)] }),
    );
    const answer = await post(`${url}/v1/completions`, { model: "nope", prompt: "x" });
    expect(answer.status).toBe(404);
    expect(answer.json()).toEqual({
      error: {
        message: expect.stringContaining('"nope"'),
        type: "invalid_request_error",
        param: "model",
        code: "BERTH_MODEL_NOT_FOUND",
      },
    });
    expect(answer.headers["x-request-id"]).toEqual(expect.any(String));
    expect(a.apiRequests).toBe(0);
  });

  it("rejects a body that is not a JSON object with 400 and never forwards it", async () => {
    const a = await fake(echoHandler("a"));
    const { url } = await gateway(
      new MemoryDirectory().addModel("alpha", { upstreams: [upstream("a-1", a.url)] }),
    );
    for (const body of ["{not json", "[1,2]", ""]) {
      const answer = await post(`${url}/v1/completions`, body);
      expect(answer.status).toBe(400);
      expect(answer.json().error.code).toBe("BERTH_INVALID_JSON");
    }
    expect(a.apiRequests).toBe(0);
  });

  it("routes the seed route by ?model=, the form's model, or the first model", async () => {
    const a = await fake(echoHandler("a"));
    const b = await fake(echoHandler("b"));
    const directory = new MemoryDirectory()
      .addModel("alpha", { upstreams: [upstream("a-1", a.url, "alpha")] })
      .addModel("beta", { upstreams: [upstream("b-1", b.url, "beta")] });
    const { url } = await gateway(directory);
    const form = { "content-type": "application/x-www-form-urlencoded" };
    expect((await post(`${url}/generate`, "text=hi", form)).json().replica).toBe("a");
    expect((await post(`${url}/generate?model=beta`, "text=hi", form)).json()).toMatchObject({
      replica: "b",
      path: "/generate?model=beta",
    });
    expect((await post(`${url}/generate`, "text=hi&model=beta", form)).json().replica).toBe("b");
    expect((await post(`${url}/generate`, { text: "hi" })).json().replica).toBe("a");
    expect((await post(`${url}/generate?model=zeta`, "text=hi", form)).status).toBe(404);
  });

  it("keeps x-request-id end to end, and makes one when the client sent none", async () => {
    const a = await fake(echoHandler("a"));
    const { url } = await gateway(
      new MemoryDirectory().addModel("m", { upstreams: [upstream("a-1", a.url)] }),
    );
    const given = await post(`${url}/v1/completions`, { model: "m" }, { "x-request-id": "client-id-1" });
    expect(given.headers["x-request-id"]).toBe("client-id-1");
    expect(given.json().requestId).toBe("client-id-1");
    const made = await post(`${url}/v1/completions`, { model: "m" });
    expect(made.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(made.json().requestId).toBe(made.headers["x-request-id"]);
    // An id that could smuggle anything into logs is replaced.
    const odd = await post(`${url}/v1/completions`, { model: "m" }, { "x-request-id": "a b\u00e9" });
    expect(odd.headers["x-request-id"]).not.toBe("a b\u00e9");
    for (const path of ["/healthz", "/v1/models", "/nope"]) {
      const response = await request(`${url}${path}`);
      await response.body.dump();
      expect(response.headers["x-request-id"]).toEqual(expect.any(String));
    }
  });

  it("lists models from the directory and answers health, readiness and metrics", async () => {
    const a = await fake(echoHandler("a"));
    const directory = new MemoryDirectory()
      .addModel("alpha", {
        upstreams: [upstream("a-1", a.url, "alpha"), upstream("a-2", a.url, "alpha", "starting")],
      })
      .addModel("beta");
    const { url } = await gateway(directory);
    await post(`${url}/v1/completions`, { model: "alpha" });
    const models = await (await request(`${url}/v1/models`)).body.json();
    expect(models).toEqual({
      object: "list",
      data: [
        { id: "alpha", object: "model", created: 0, owned_by: "berth" },
        { id: "beta", object: "model", created: 0, owned_by: "berth" },
      ],
    });
    expect((await request(`${url}/healthz`)).statusCode).toBe(200);
    const ready = await request(`${url}/readyz`);
    expect(await ready.body.json()).toEqual({
      status: "ready",
      readyReplicas: { alpha: 1, beta: 0 },
      models: { alpha: { readyReplicas: 1, available: true }, beta: { readyReplicas: 0, available: true } },
    });
    const metrics = await (await request(`${url}/metrics`)).body.text();
    expect(metrics).toContain('berth_requests_total{model="alpha",route="/v1/completions",code="200"} 1');
    expect(metrics).toContain('berth_upstream_requests_total{model="alpha",replica="a-1",code="200"} 1');
    expect(metrics).toContain('berth_replicas{model="alpha",state="ready"} 1');
    expect(metrics).toContain('berth_replicas{model="alpha",state="starting"} 1');
    expect(metrics).toContain('berth_upstream_requests_in_flight{model="alpha",replica="a-1"} 0');
    expect(metrics).toContain("berth_request_duration_seconds_bucket");
  });
});

describe("balancing", () => {
  it("sends new requests away from a replica busy with long requests (least-load)", async () => {
    const gates: Array<() => void> = [];
    const slow = await fake((_req, res) => {
      gates.push(() => res.end("{}"));
    });
    const fastA = await fake(echoHandler("fast-a"));
    const fastB = await fake(echoHandler("fast-b"));
    const directory = new MemoryDirectory().addModel("m", {
      upstreams: [upstream("slow", slow.url), upstream("fast-a", fastA.url), upstream("fast-b", fastB.url)],
    });
    // A random source that would pick "slow" first whenever it can.
    const { url, gateway: built } = await gateway(directory, { random: () => 0 });
    // Occupy "slow": with nothing in flight anywhere, requests go where the random source points.
    const pending = [
      post(`${url}/v1/completions`, { model: "m" }),
      post(`${url}/v1/completions`, { model: "m" }),
    ];
    await waitUntil(() => slow.apiRequests === 1, "a request on slow");
    for (let i = 0; i < 20; i++) await post(`${url}/v1/completions`, { model: "m" });
    expect(slow.apiRequests).toBe(1);
    expect(fastA.apiRequests + fastB.apiRequests).toBe(21);
    expect(built.load.load("m")).toMatchObject({ inFlight: 1, perUpstream: { slow: 1 } });
    for (const open of gates) open();
    await Promise.all(pending);
    expect(built.load.load("m")).toMatchObject({ inFlight: 0, completed: 22, perUpstream: {} });
  });

  it("sends prompts with one prefix to one replica (prefix-hash)", async () => {
    const replicas = await Promise.all(["r1", "r2", "r3"].map((name) => fake(echoHandler(name))));
    const directory = new MemoryDirectory().addModel("m", {
      deployment: deployment("m", { routing: { strategy: "prefix-hash", prefixLength: 32 } }),
      upstreams: replicas.map((replica, index) => upstream(`r${index + 1}`, replica.url)),
    });
    const { url } = await gateway(directory);
    const seen = new Map<string, Set<string>>();
    for (let conversation = 0; conversation < 6; conversation++) {
      for (let turn = 0; turn < 4; turn++) {
        const prompt = `conversation ${conversation} shared system prompt... turn ${turn}`;
        const replica = (await post(`${url}/v1/completions`, { model: "m", prompt })).json()
          .replica as string;
        seen.set(String(conversation), (seen.get(String(conversation)) ?? new Set()).add(replica));
      }
    }
    for (const replicasOfConversation of seen.values()) expect(replicasOfConversation.size).toBe(1);
    expect(new Set([...seen.values()].flatMap((set) => [...set])).size).toBeGreaterThan(1);
  });

  it("rotates with round-robin", async () => {
    const replicas = await Promise.all(["r1", "r2"].map((name) => fake(echoHandler(name))));
    const directory = new MemoryDirectory().addModel("m", {
      deployment: deployment("m", { routing: { strategy: "round-robin" } }),
      upstreams: replicas.map((replica, index) => upstream(`r${index + 1}`, replica.url)),
    });
    const { url } = await gateway(directory);
    const order = [];
    for (let i = 0; i < 4; i++)
      order.push((await post(`${url}/v1/completions`, { model: "m" })).json().replica);
    expect(order).toEqual(["r1", "r2", "r1", "r2"]);
  });
});

describe("retries and failures", () => {
  it("retries a refused connection on another replica and ejects the refusing one", async () => {
    const good = await fake(echoHandler("good"));
    const directory = new MemoryDirectory().addModel("m", {
      upstreams: [upstream("dead", await refusedUrl()), upstream("good", good.url)],
    });
    const { url, gateway: built, logs } = await gateway(directory, { random: () => 0 });
    const answer = await post(`${url}/v1/completions`, { model: "m" });
    expect(answer.status).toBe(200);
    expect(answer.json().replica).toBe("good");
    const metrics = await built.metrics.registry.metrics();
    expect(metrics).toContain('berth_upstream_requests_total{model="m",replica="dead",code="refused"} 1');
    expect(metrics).toContain('berth_gateway_ejections_total{model="m",replica="dead",reason="refused"} 1');
    expect(logs()).toContain("taken out of rotation");
    // Ejected: the next requests do not try it at all.
    for (let i = 0; i < 5; i++)
      expect((await post(`${url}/v1/completions`, { model: "m" })).status).toBe(200);
    expect(await built.metrics.registry.metrics()).toContain(
      'berth_upstream_requests_total{model="m",replica="dead",code="refused"} 1',
    );
  });

  it("answers 502 when no replica can be reached", async () => {
    const directory = new MemoryDirectory().addModel("m", {
      upstreams: [upstream("dead", await refusedUrl())],
    });
    const { url } = await gateway(directory);
    const answer = await post(`${url}/v1/completions`, { model: "m" });
    expect(answer.status).toBe(502);
    expect(answer.json().error.code).toBe("BERTH_UPSTREAM_UNAVAILABLE");
  });

  it("retries a 503 draining answer elsewhere, and passes it on when there is no elsewhere", async () => {
    const drainingBody = JSON.stringify({
      error: { message: "draining", type: "server_error", param: null, code: "BERTH_DRAINING" },
    });
    const draining = await fake((_req, res) => {
      res.writeHead(503, { "content-type": "application/json" });
      res.end(drainingBody);
    });
    const good = await fake(echoHandler("good"));
    const directory = new MemoryDirectory().addModel("m", {
      upstreams: [upstream("draining", draining.url), upstream("good", good.url)],
    });
    const { url } = await gateway(directory, { random: () => 0 });
    const answer = await post(`${url}/v1/completions`, { model: "m" });
    expect(answer.status).toBe(200);
    expect(draining.apiRequests).toBe(1);

    directory.setUpstreams("m", [upstream("draining", draining.url)]);
    const alone = await post(`${url}/v1/completions`, { model: "m" }, { "x-request-id": "drain-1" });
    expect(alone.status).toBe(503);
    expect(alone.text).toBe(drainingBody);
    expect(alone.headers["x-request-id"]).toBe("drain-1");
  });

  it("ejects a replica that hangs and sends its requests elsewhere", async () => {
    // Accepts connections and reads requests, never answers anything (also not /healthz).
    const hung = await fake(() => {});
    const good = await fake(echoHandler("good"));
    const directory = new MemoryDirectory().addModel("m", {
      upstreams: [upstream("hung", hung.url), upstream("good", good.url)],
    });
    const {
      url,
      gateway: built,
      logs,
    } = await gateway(directory, {
      random: () => 0,
      proxy: { stallProbeAfterMs: 100 },
      probeTimeoutMs: 200,
    });
    const answers = await Promise.all([1, 2, 3].map(() => post(`${url}/v1/completions`, { model: "m" })));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(answers.every((answer) => answer.json().replica === "good")).toBe(true);
    expect(logs()).toMatch(/replica hung taken out of rotation .*\(hung\)/);
    expect(await built.metrics.registry.metrics()).toContain(
      'berth_gateway_ejections_total{model="m",replica="hung",reason="hung"}',
    );
    // While ejected, nothing more is sent to it.
    const before = hung.apiRequests;
    for (let i = 0; i < 5; i++) await post(`${url}/v1/completions`, { model: "m" });
    expect(hung.apiRequests).toBe(before);
  });

  it("answers 504 when the only replica hangs", async () => {
    const hung = await fake(() => {});
    const directory = new MemoryDirectory().addModel("m", { upstreams: [upstream("hung", hung.url)] });
    const { url } = await gateway(directory, { proxy: { stallProbeAfterMs: 100 }, probeTimeoutMs: 200 });
    const answer = await post(`${url}/v1/completions`, { model: "m" });
    expect(answer.status).toBe(504);
    expect(answer.json().error.code).toBe("BERTH_UPSTREAM_TIMEOUT");
  });

  it("keeps waiting on a slow replica that still answers its health probe", async () => {
    let release: (() => void) | undefined;
    const slow = await fake((req, res) => {
      if (req.url === "/healthz") return void res.end("ok");
      release = () => res.end(JSON.stringify({ replica: "slow" }));
    });
    const directory = new MemoryDirectory().addModel("m", { upstreams: [upstream("slow", slow.url)] });
    const { url } = await gateway(directory, { proxy: { stallProbeAfterMs: 50 }, probeTimeoutMs: 500 });
    const pending = post(`${url}/v1/completions`, { model: "m" });
    // Several probes come and go while the generation runs.
    await waitUntil(() => slow.received - slow.apiRequests >= 3, "three health probes");
    release?.();
    expect((await pending).json().replica).toBe("slow");
  });

  it("answers 504 BERTH_DEADLINE_EXCEEDED past the request's deadline and cancels upstream", async () => {
    const slow = await fake((req, res) => {
      if (req.url === "/healthz") res.end("ok");
    });
    const directory = new MemoryDirectory().addModel("m", { upstreams: [upstream("slow", slow.url)] });
    const { url } = await gateway(directory);
    const answer = await post(`${url}/v1/completions`, { model: "m" }, { "x-berth-timeout-ms": "200" });
    expect(answer.status).toBe(504);
    expect(answer.json().error.code).toBe("BERTH_DEADLINE_EXCEEDED");
    await waitUntil(() => slow.abandoned === 1, "the upstream request to be cancelled");
  });
});

describe("streaming", () => {
  it("passes server-sent events through as they come", async () => {
    let sendNext: ((text: string | null) => void) | undefined;
    const sse = await fake((req, res) => {
      if (req.url === "/healthz") return void res.end("ok");
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
      sendNext = (text) => (text === null ? res.end("data: [DONE]\n\n") : res.write(`data: ${text}\n\n`));
    });
    const directory = new MemoryDirectory().addModel("m", { upstreams: [upstream("s", sse.url)] });
    const { url, gateway: built } = await gateway(directory);
    const response = await request(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", stream: true }),
    });
    expect(response.headers["content-type"]).toBe("text/event-stream");
    const iterator = response.body[Symbol.asyncIterator]();
    await waitUntil(() => sendNext !== undefined, "the upstream stream");
    // Each event reaches the client before the next one is sent: nothing buffers the stream.
    for (const token of ["one", "two", "three"]) {
      sendNext!(JSON.stringify({ token }));
      const chunk = await iterator.next();
      expect(Buffer.from(chunk.value as Buffer).toString()).toBe(`data: {"token":"${token}"}\n\n`);
    }
    sendNext!(null);
    expect(Buffer.from((await iterator.next()).value as Buffer).toString()).toBe("data: [DONE]\n\n");
    expect((await iterator.next()).done).toBe(true);
    const metrics = await built.metrics.registry.metrics();
    expect(metrics).toContain('berth_time_to_first_token_seconds_count{model="m",route="/v1/completions"} 1');
  });

  it("cancels the upstream request when the client disconnects mid-stream", async () => {
    const sse = await fake((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const timer = setInterval(() => res.write('data: {"t":1}\n\n'), 5);
      res.once("close", () => clearInterval(timer));
    });
    const directory = new MemoryDirectory().addModel("m", { upstreams: [upstream("s", sse.url)] });
    const { url, gateway: built } = await gateway(directory);
    const controller = new AbortController();
    const response = await request(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", stream: true }),
      signal: controller.signal,
    });
    for await (const _chunk of response.body) break;
    controller.abort();
    await waitUntil(() => sse.abandoned === 1, "the upstream stream to be closed");
    await waitUntil(() => built.load.load("m").inFlight === 0, "the gateway to forget the request");
    expect(await built.metrics.registry.metrics()).toContain(
      'berth_requests_total{model="m",route="/v1/completions",code="499"} 1',
    );
  });

  it("applies backpressure: a client that does not read stops the replica's writes", async () => {
    const total = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 97);
    const progress = { written: 0, waitingForDrain: false, finished: false };
    const producer = await fake((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const pump = () => {
        while (progress.written < total) {
          progress.written += chunk.length;
          if (!res.write(chunk)) {
            progress.waitingForDrain = true;
            res.once("drain", () => {
              progress.waitingForDrain = false;
              pump();
            });
            return;
          }
        }
        progress.finished = true;
        res.end();
      };
      pump();
    });
    const directory = new MemoryDirectory().addModel("m", { upstreams: [upstream("p", producer.url)] });
    const { url } = await gateway(directory);
    const controller = new AbortController();
    const response = await request(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", stream: true }),
      signal: controller.signal,
    });
    response.body.pause();
    // Without backpressure the gateway would read all 256 MiB into memory and the replica would finish.
    let lastWritten = -1;
    let stableRounds = 0;
    await waitUntil(() => {
      if (progress.finished) return true;
      stableRounds = progress.waitingForDrain && progress.written === lastWritten ? stableRounds + 1 : 0;
      lastWritten = progress.written;
      return stableRounds >= 10;
    }, "the replica to block or finish");
    expect(progress.finished).toBe(false);
    expect(progress.written).toBeLessThan(total / 4);
    controller.abort();
  });
});

describe("auth and rate limits", () => {
  const keys = {
    env: { GATEWAY_KEYS: "alice sk-alice-secret-1\nbob sk-bob-secret-2" },
    readFile: async () => "",
  };

  it("refuses to start beyond loopback with auth on and no keys", async () => {
    const directory = new MemoryDirectory().addModel("m", { deployment: deployment("m") });
    const { logger } = captureLogger();
    const attempt = buildGateway({ directory, logger, host: "0.0.0.0", port: 0 });
    await expect(attempt).rejects.toBeInstanceOf(GatewayConfigError);
    await expect(attempt).rejects.toMatchObject({
      code: "BERTH_AUTH_NO_KEYS",
      message: expect.stringContaining("spec.auth.apiKeysFrom is not set"),
    });
  });

  it("401s without a key or with a wrong one, 200 with a good one, and never logs or forwards a key", async () => {
    const a = await fake(echoHandler("a"));
    const directory = new MemoryDirectory().addModel("m", {
      deployment: deployment("m", { auth: { enabled: true, apiKeysFrom: "env:GATEWAY_KEYS" } }),
      upstreams: [upstream("a-1", a.url)],
    });
    const { url, logs } = await gateway(directory, { keySources: keys });
    const none = await post(`${url}/v1/completions`, { model: "m" });
    expect(none.status).toBe(401);
    expect(none.json().error).toMatchObject({ type: "authentication_error", code: "BERTH_UNAUTHORIZED" });
    const wrong = await post(
      `${url}/v1/completions`,
      { model: "m" },
      { authorization: "Bearer sk-alice-secret-X" },
    );
    expect(wrong.status).toBe(401);
    const good = await post(
      `${url}/v1/completions`,
      { model: "m" },
      { authorization: "Bearer sk-alice-secret-1" },
    );
    expect(good.status).toBe(200);
    expect(good.json().authorization).toBeNull();
    expect((await request(`${url}/v1/models`)).statusCode).toBe(401);
    const listed = await request(`${url}/v1/models`, {
      headers: { authorization: "Bearer sk-bob-secret-2" },
    });
    expect(listed.statusCode).toBe(200);
    expect(a.apiRequests).toBe(1);
    expect(logs()).not.toContain("sk-alice");
    expect(logs()).not.toContain("sk-bob");
  });

  it("limits requests per key and answers 429 with Retry-After", async () => {
    const a = await fake(echoHandler("a"));
    const directory = new MemoryDirectory().addModel("m", {
      deployment: deployment("m", {
        auth: { enabled: true, apiKeysFrom: "env:GATEWAY_KEYS" },
        rateLimit: { requestsPerMinute: 2 },
      }),
      upstreams: [upstream("a-1", a.url)],
    });
    const { url, gateway: built } = await gateway(directory, { keySources: keys });
    const alice = { authorization: "Bearer sk-alice-secret-1" };
    expect((await post(`${url}/v1/completions`, { model: "m" }, alice)).status).toBe(200);
    expect((await post(`${url}/v1/completions`, { model: "m" }, alice)).status).toBe(200);
    const limited = await post(`${url}/v1/completions`, { model: "m" }, alice);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers["retry-after"])).toBeLessThanOrEqual(30);
    expect(limited.json().error).toMatchObject({ type: "rate_limit_error", code: "BERTH_RATE_LIMITED" });
    // Bob has a bucket of his own.
    expect(
      (await post(`${url}/v1/completions`, { model: "m" }, { authorization: "Bearer sk-bob-secret-2" }))
        .status,
    ).toBe(200);
    expect(a.apiRequests).toBe(3);
    expect(await built.metrics.registry.metrics()).toContain(
      'berth_gateway_rate_limited_total{model="m",limit="requests"} 1',
    );
  });

  it("limits tokens per minute by client IP when auth is off, settling with the reported usage", async () => {
    const a = await fake(echoHandler("a"));
    const directory = new MemoryDirectory().addModel("m", {
      deployment: deployment("m", { rateLimit: { tokensPerMinute: 100 } }),
      upstreams: [upstream("a-1", a.url)],
    });
    const { url } = await gateway(directory);
    // Each reserves ~58 tokens (max_tokens 50 + the body), the response reports 5 used and the rest
    // comes back: without settling, the second request would already be refused.
    for (let i = 0; i < 5; i++) {
      expect((await post(`${url}/v1/completions`, { model: "m", max_tokens: 50 })).status).toBe(200);
    }
    // A request reserving more than the bucket holds needs a full one: 25 tokens were used.
    const limited = await post(`${url}/v1/completions`, { model: "m", max_tokens: 500 });
    expect(limited.status).toBe(429);
    expect(limited.json().error.message).toContain("tokens per minute");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
  });
});

describe("scale from zero", () => {
  it("holds a request until a replica is ready, waking the model", async () => {
    const a = await fake(echoHandler("a"));
    const directory = new MemoryDirectory().addModel("m", { upstreams: [] });
    const { url, gateway: built } = await gateway(directory);
    const pending = post(`${url}/v1/completions`, { model: "m" });
    await waitUntil(() => directory.wakes.length > 0, "a wake");
    expect(built.load.load("m")).toMatchObject({ inFlight: 1, held: 1 });
    directory.setUpstreams("m", [upstream("a-1", a.url, "m", "starting")]);
    expect(built.load.load("m").held).toBe(1);
    directory.setState("m", "a-1", "ready");
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(built.load.load("m")).toMatchObject({ inFlight: 0, held: 0, completed: 1 });
  });

  it("answers 503 with Retry-After when no replica comes in time, or too many wait", async () => {
    const directory = new MemoryDirectory().addModel("m", { upstreams: [] });
    const { url } = await gateway(directory, { hold: { holdTimeoutMs: 100, maxHeldPerModel: 1 } });
    const first = post(`${url}/v1/completions`, { model: "m" });
    await waitUntil(() => directory.wakes.length === 1, "the first request to be held");
    const second = await post(`${url}/v1/completions`, { model: "m" });
    expect(second.status).toBe(503);
    expect(second.json().error.code).toBe("BERTH_HOLD_FULL");
    const timedOut = await first;
    expect(timedOut.status).toBe(503);
    expect(timedOut.json().error.code).toBe("BERTH_NO_REPLICA");
    expect(timedOut.headers["retry-after"]).toBe("5");
  });
});

it("serves /api/status with models, replicas and load", async () => {
  const a = await fake(echoHandler("a"));
  const directory = new MemoryDirectory().addModel("m", {
    upstreams: [upstream("a-1", a.url), upstream("a-2", await refusedUrl(), "m", "starting")],
  });
  const { url } = await gateway(directory);
  await post(`${url}/v1/completions`, { model: "m" });
  const status = (await (await request(`${url}/api/status`)).body.json()) as {
    models: Array<{ name: string; completed: number; replicas: Array<{ id: string; state: string }> }>;
  };
  expect(status.models).toEqual([
    expect.objectContaining({
      name: "m",
      strategy: "least-load",
      completed: 1,
      inFlight: 0,
      replicas: [
        expect.objectContaining({ id: "a-1", state: "ready", inFlight: 0 }),
        expect.objectContaining({ id: "a-2", state: "starting" }),
      ],
    }),
  ]);
});

it("hashes nothing it forwards: a large body arrives byte for byte", async () => {
  const a = await fake((_req, res, body) => res.end(createHash("sha256").update(body).digest("hex")));
  const { url } = await gateway(
    new MemoryDirectory().addModel("m", { upstreams: [upstream("a-1", a.url)] }),
    {
      bodyLimitBytes: 4 * 1024 * 1024,
    },
  );
  const body = JSON.stringify({ model: "m", prompt: "é".repeat(300_000) });
  const answer = await post(`${url}/v1/completions`, body);
  expect(answer.text).toBe(createHash("sha256").update(body).digest("hex"));
});
