// In-process tests of the HTTP layer with app.inject(): shapes, validation, error codes, SSE framing,
// deadlines, admission and readiness. The engine is the in-memory one (test/support/memory-engine.ts):
// these tests are about HTTP behaviour; inference itself is tested on the real engine in test/server.

import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryEngine } from "../../test/support/memory-engine.js";
import { createLogger } from "../util/log.js";
import { buildServerApp, type ServerAppOptions } from "./app.js";
import { ServerLifecycle } from "./lifecycle.js";

const silent = createLogger({ level: "silent" });
const apps: FastifyInstance[] = [];

async function appWith(engine: MemoryEngine, options: ServerAppOptions = {}): Promise<FastifyInstance> {
  const app = await buildServerApp({ engine, logger: silent, ...options });
  apps.push(app);
  return app;
}

afterEach(async () => {
  while (apps.length > 0) await apps.pop()?.close();
});

function sseEvents(body: string): string[] {
  return body
    .split("\n\n")
    .filter((event) => event.length > 0)
    .map((event) => {
      expect(event.startsWith("data: ")).toBe(true);
      return event.slice("data: ".length);
    });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("POST /generate (the seed route)", () => {
  it("answers form, JSON and multipart bodies with text + continuation; max_length counts the prompt", async () => {
    const app = await appWith(new MemoryEngine());
    const form = await app.inject({
      method: "POST",
      url: "/generate",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: "text=Hello&max_length=9",
    });
    expect(form.statusCode).toBe(200);
    // "Hello" is 5 byte-tokens; max_length 9 leaves 4 new ones.
    expect(form.json()).toEqual({ generated_text: "Hello and" });

    const json = await app.inject({ method: "POST", url: "/generate", payload: { text: "Hello" } });
    expect(json.statusCode).toBe(200);
    // The default max_length is the seed app's 50 (prompt included): 45 new byte-tokens.
    expect(json.json().generated_text).toMatch(/^Hello and the quick /);
    expect(json.json().generated_text).toHaveLength(50);

    const boundary = "berthboundary";
    const multipart = await app.inject({
      method: "POST",
      url: "/generate",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      payload: `--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nHéllo\r\n--${boundary}\r\nContent-Disposition: form-data; name="max_length"\r\n\r\n9\r\n--${boundary}--\r\n`,
    });
    expect(multipart.statusCode).toBe(200);
    // "Héllo" is 6 UTF-8 bytes: 3 new tokens.
    expect(multipart.json()).toEqual({ generated_text: "Héllo an" });
  });

  it("generates one token when the prompt already reaches max_length, as Hugging Face generate() does", async () => {
    const app = await appWith(new MemoryEngine());
    const response = await app.inject({
      method: "POST",
      url: "/generate",
      payload: { text: "Hello", max_length: 3 },
    });
    expect(response.json()).toEqual({ generated_text: "Hello " });
  });

  it("refuses invalid UTF-8 in form and multipart bodies", async () => {
    const app = await appWith(new MemoryEngine());
    const percent = await app.inject({
      method: "POST",
      url: "/generate",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: "text=%FF%FE",
    });
    expect(percent.statusCode).toBe(400);
    expect(percent.json().error.code).toBe("BERTH_INVALID_UTF8");
    const boundary = "b";
    const multipart = await app.inject({
      method: "POST",
      url: "/generate",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      payload: Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n`),
        Buffer.from([0xc3, 0x28]),
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]),
    });
    expect(multipart.statusCode).toBe(400);
    expect(multipart.json().error.code).toBe("BERTH_INVALID_UTF8");
  });
});

describe("OpenAI routes", () => {
  it("answers a completion with ids, usage and finish_reason; stop sequences end it early", async () => {
    const app = await appWith(new MemoryEngine());
    const response = await app.inject({
      method: "POST",
      url: "/v1/completions",
      payload: { model: "memory-model", prompt: "Say", max_tokens: 8 },
    });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.id).toMatch(/^cmpl-/);
    expect(body.object).toBe("text_completion");
    expect(body.model).toBe("memory-model");
    expect(typeof body.created).toBe("number");
    expect(body.choices).toEqual([{ index: 0, text: " and the", logprobs: null, finish_reason: "length" }]);
    expect(body.usage).toEqual({
      prompt_tokens: 3,
      completion_tokens: 8,
      total_tokens: 11,
      prompt_tokens_details: { cached_tokens: 0 },
    });

    const stopped = await app.inject({
      method: "POST",
      url: "/v1/completions",
      payload: { model: "memory-model", prompt: "Say", max_tokens: 30, stop: ["quick", "zzz"] },
    });
    expect(stopped.json().choices[0]).toMatchObject({ text: " and the ", finish_reason: "stop" });
  });

  it("renders chat messages with the default template when the model has none", async () => {
    const engine = new MemoryEngine();
    const app = await appWith(engine);
    const response = await app.inject({
      method: "POST",
      url: "/v1/chat/completions",
      payload: {
        model: "memory-model",
        max_tokens: 4,
        messages: [
          { role: "system", content: "Be terse." },
          { role: "user", content: [{ type: "text", text: "Hi" }] },
        ],
      },
    });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0].message).toEqual({ role: "assistant", content: " and", refusal: null });
    expect(engine.detokenize(engine.prompts.at(-1) as number[])).toBe(
      "system: Be terse.\nuser: Hi\nassistant:",
    );
  });

  it("streams completions as SSE ending in [DONE], with the same text as without streaming", async () => {
    const app = await appWith(new MemoryEngine());
    const payload = { model: "memory-model", prompt: "Say", max_tokens: 12 };
    const plain = (await app.inject({ method: "POST", url: "/v1/completions", payload })).json();
    const response = await app.inject({
      method: "POST",
      url: "/v1/completions",
      payload: { ...payload, stream: true, stream_options: { include_usage: true } },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(response.headers["x-request-id"]).toBeTruthy();
    const events = sseEvents(response.body);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event));
    const usage = chunks.at(-1);
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual(plain.usage);
    const finish = chunks.at(-2);
    expect(finish.choices[0].finish_reason).toBe("length");
    const text = chunks.map((chunk) => chunk.choices[0]?.text ?? "").join("");
    expect(text).toBe(plain.choices[0].text);
    for (const chunk of chunks.slice(0, -1)) expect(chunk.usage).toBeNull();
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
  });

  it("streams chat with a role chunk first and finish_reason last", async () => {
    const app = await appWith(new MemoryEngine());
    const response = await app.inject({
      method: "POST",
      url: "/v1/chat/completions",
      payload: {
        model: "memory-model",
        messages: [{ role: "user", content: "Hi" }],
        max_tokens: 5,
        stream: true,
      },
    });
    const events = sseEvents(response.body);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event));
    expect(chunks[0].object).toBe("chat.completion.chunk");
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    expect(chunks.at(-1).choices[0]).toMatchObject({ delta: {}, finish_reason: "length" });
    expect(chunks.map((chunk) => chunk.choices[0].delta.content ?? "").join("")).toBe(" and ");
    expect(chunks.some((chunk) => "usage" in chunk)).toBe(false);
  });

  it("lists the served model", async () => {
    const app = await appWith(new MemoryEngine({ id: "tiny" }));
    const response = await app.inject({ method: "GET", url: "/v1/models" });
    expect(response.json()).toMatchObject({
      object: "list",
      data: [{ id: "tiny", object: "model", owned_by: "berth" }],
    });
  });
});

describe("errors", () => {
  const cases: Array<{
    name: string;
    url?: string;
    payload: string | Buffer | object;
    contentType?: string;
    status: number;
    code: string;
    param?: string;
  }> = [
    { name: "malformed JSON", payload: '{"model":', status: 400, code: "BERTH_INVALID_JSON" },
    { name: "empty JSON body", payload: "", status: 400, code: "BERTH_INVALID_JSON" },
    {
      name: "invalid UTF-8 in JSON",
      payload: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
      status: 400,
      code: "BERTH_INVALID_UTF8",
    },
    {
      name: "body is not an object",
      payload: "[1,2]",
      contentType: "application/json",
      status: 400,
      code: "BERTH_INVALID_REQUEST",
    },
    {
      name: "prompt of the wrong type",
      payload: { model: "memory-model", prompt: 5 },
      status: 400,
      code: "BERTH_INVALID_REQUEST",
      param: "prompt",
    },
    {
      name: "n=2",
      payload: { model: "memory-model", prompt: "a", n: 2 },
      status: 400,
      code: "BERTH_INVALID_REQUEST",
      param: "n",
    },
    {
      name: "unknown model",
      payload: { model: "gpt-9", prompt: "a" },
      status: 404,
      code: "BERTH_MODEL_NOT_FOUND",
      param: "model",
    },
    {
      name: "prompt over the context",
      payload: { model: "memory-model", prompt: "x".repeat(250), max_tokens: 10 },
      status: 400,
      code: "BERTH_CONTEXT_OVERFLOW",
    },
    {
      name: "a form body on an OpenAI route",
      payload: "model=memory-model&prompt=a",
      contentType: "application/x-www-form-urlencoded",
      status: 415,
      code: "BERTH_UNSUPPORTED_MEDIA_TYPE",
    },
    {
      name: "text/plain",
      payload: "hello",
      contentType: "text/plain",
      status: 415,
      code: "BERTH_UNSUPPORTED_MEDIA_TYPE",
    },
    {
      name: "oversize body",
      payload: { model: "memory-model", prompt: "x".repeat(2048) },
      status: 413,
      code: "BERTH_BODY_TOO_LARGE",
    },
    {
      name: "token id the engine refuses",
      payload: { model: "memory-model", prompt: [1, 99999] },
      status: 400,
      code: "BERTH_INVALID_REQUEST",
    },
    { name: "unknown route", url: "/v2/nothing", payload: {}, status: 404, code: "BERTH_ROUTE_NOT_FOUND" },
    {
      name: "/generate without text",
      url: "/generate",
      payload: { max_length: 5 },
      status: 400,
      code: "BERTH_INVALID_REQUEST",
      param: "text",
    },
    {
      name: "/generate with max_length 0",
      url: "/generate",
      payload: { text: "a", max_length: "0" },
      status: 400,
      code: "BERTH_INVALID_REQUEST",
      param: "max_length",
    },
  ];

  it.each(cases)("$name → $status $code", async (testCase) => {
    const engine = new MemoryEngine();
    const app = await appWith(engine, { bodyLimitBytes: 1024 });
    const payload =
      typeof testCase.payload === "object" && !Buffer.isBuffer(testCase.payload)
        ? JSON.stringify(testCase.payload)
        : testCase.payload;
    const response = await app.inject({
      method: "POST",
      url: testCase.url ?? "/v1/completions",
      headers: { "content-type": testCase.contentType ?? "application/json", "x-request-id": "case-1" },
      payload,
    });
    expect(response.statusCode).toBe(testCase.status);
    const body = response.json();
    expect(body.error.code).toBe(testCase.code);
    expect(typeof body.error.message).toBe("string");
    expect(body.error.type).toBe("invalid_request_error");
    if (testCase.param) expect(body.error.param).toBe(testCase.param);
    expect(response.headers["x-request-id"]).toBe("case-1");
    expect(engine.prompts).toEqual([]);
  });

  it("accepts a sane incoming x-request-id and replaces one that is not", async () => {
    const app = await appWith(new MemoryEngine());
    const kept = await app.inject({ method: "GET", url: "/healthz", headers: { "x-request-id": "abc-123" } });
    expect(kept.headers["x-request-id"]).toBe("abc-123");
    const replaced = await app.inject({
      method: "GET",
      url: "/healthz",
      headers: { "x-request-id": "no spaces\tplease" },
    });
    expect(replaced.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    const generated = await app.inject({ method: "GET", url: "/nope" });
    expect(generated.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers 429 with Retry-After when every slot and the queue are taken", async () => {
    const engine = new MemoryEngine({ slots: 1, maxQueue: 0, stepMs: 5 });
    const app = await appWith(engine, { retryAfterSeconds: 2 });
    const first = app.inject({
      method: "POST",
      url: "/v1/completions",
      payload: { model: "memory-model", prompt: "a", max_tokens: 100 },
    });
    await until(() => engine.stats().running === 1, "the first request to run");
    const second = await app.inject({
      method: "POST",
      url: "/v1/completions",
      payload: { model: "memory-model", prompt: "a", max_tokens: 1 },
    });
    expect(second.statusCode).toBe(429);
    expect(second.headers["retry-after"]).toBe("2");
    expect(second.json().error).toMatchObject({ code: "BERTH_OVERLOADED", type: "rate_limit_error" });
    expect((await first).statusCode).toBe(200);
  });

  it("answers 504 past the deadline, and ends a stream with an error event", async () => {
    const engine = new MemoryEngine({ stepMs: 20 });
    const app = await appWith(engine);
    const payload = { model: "memory-model", prompt: "a", max_tokens: 200 };
    const plain = await app.inject({
      method: "POST",
      url: "/v1/completions",
      headers: { "x-berth-timeout-ms": "100" },
      payload,
    });
    expect(plain.statusCode).toBe(504);
    expect(plain.json().error.code).toBe("BERTH_DEADLINE_EXCEEDED");
    const streamed = await app.inject({
      method: "POST",
      url: "/v1/completions",
      headers: { "x-berth-timeout-ms": "100" },
      payload: { ...payload, stream: true },
    });
    expect(streamed.statusCode).toBe(200);
    const events = sseEvents(streamed.body);
    expect(events).not.toContain("[DONE]");
    expect(JSON.parse(events.at(-1)!).error.code).toBe("BERTH_DEADLINE_EXCEEDED");
    await until(() => engine.stats().running === 0, "the slots to be freed");
    expect(engine.cancelled).toBe(2);

    const badHeader = await app.inject({
      method: "POST",
      url: "/v1/completions",
      headers: { "x-berth-timeout-ms": "soon" },
      payload,
    });
    expect(badHeader.statusCode).toBe(400);
    expect(badHeader.json().error.param).toBe("x-berth-timeout-ms");
  });
});

describe("readiness and draining", () => {
  it("is alive while loading, ready once the engine is set, and refuses work while draining", async () => {
    const lifecycle = new ServerLifecycle();
    const app = await buildServerApp({ lifecycle, logger: silent });
    apps.push(app);
    expect((await app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    const loading = await app.inject({ method: "GET", url: "/readyz" });
    expect(loading.statusCode).toBe(503);
    expect(loading.json().error.code).toBe("BERTH_NOT_READY");
    const early = await app.inject({
      method: "POST",
      url: "/v1/completions",
      payload: { model: "m", prompt: "a" },
    });
    expect(early.json().error.code).toBe("BERTH_NOT_READY");

    lifecycle.setEngine(new MemoryEngine());
    expect((await app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);

    lifecycle.beginDrain();
    const draining = await app.inject({ method: "GET", url: "/readyz" });
    expect(draining.statusCode).toBe(503);
    expect(draining.json().error.code).toBe("BERTH_DRAINING");
    const refused = await app.inject({
      method: "POST",
      url: "/generate",
      payload: { text: "Hello" },
    });
    expect(refused.statusCode).toBe(503);
    expect(refused.json().error.code).toBe("BERTH_DRAINING");
    expect(refused.headers.connection).toBe("close");
    expect((await app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
  });
});

describe("metrics", () => {
  it("counts requests by route and code, tokens and batch sizes, in the app's own registry", async () => {
    const app = await appWith(new MemoryEngine());
    await app.inject({
      method: "POST",
      url: "/v1/completions",
      payload: { model: "memory-model", prompt: "abc", max_tokens: 4 },
    });
    await app.inject({ method: "POST", url: "/v1/completions", payload: { model: "nope", prompt: "abc" } });
    const text = (await app.inject({ method: "GET", url: "/metrics" })).body;
    expect(text).toContain('berth_requests_total{model="memory-model",route="/v1/completions",code="200"} 1');
    expect(text).toContain('berth_requests_total{model="memory-model",route="/v1/completions",code="404"} 1');
    expect(text).toContain('berth_prompt_tokens_total{model="memory-model"} 3');
    expect(text).toContain('berth_generated_tokens_total{model="memory-model"} 4');
    expect(text).toContain('berth_requests_running{model="memory-model"} 0');
    expect(text).toContain('berth_batch_size_count{model="memory-model"} 4');
    expect(text).toMatch(/berth_time_to_first_token_seconds_count\{model="memory-model"\} 1/);
    expect(text).toMatch(/berth_inter_token_latency_seconds_count\{model="memory-model"\} 3/);
    // A second app has its own registry: nothing leaks between them.
    const other = await appWith(new MemoryEngine());
    expect((await other.inject({ method: "GET", url: "/metrics" })).body).not.toContain('code="200"');
  });
});

describe("client disconnect (real sockets)", () => {
  async function listen(app: FastifyInstance): Promise<number> {
    await app.listen({ host: "127.0.0.1", port: 0 });
    return (app.server.address() as AddressInfo).port;
  }

  /** Posts a streaming request and closes the socket once the first event arrives. */
  function streamAndHangUp(port: number, body: object): Promise<void> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        {
          host: "127.0.0.1",
          port,
          path: "/v1/completions",
          method: "POST",
          headers: { "content-type": "application/json" },
        },
        (response) => {
          response.once("data", () => {
            request.destroy();
            resolve();
          });
        },
      );
      request.once("error", reject);
      request.end(JSON.stringify(body));
    });
  }

  it("cancels the generation and frees the slot when the client goes away", async () => {
    const engine = new MemoryEngine({ stepMs: 10 });
    const app = await appWith(engine);
    const port = await listen(app);
    const body = { model: "memory-model", prompt: "a", max_tokens: 200 };

    await streamAndHangUp(port, { ...body, stream: true });
    await until(
      () => engine.cancelled === 1 && engine.stats().running === 0,
      "the stream's generation to stop",
    );

    const request = httpRequest({
      host: "127.0.0.1",
      port,
      path: "/v1/completions",
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    request.on("error", () => {});
    request.end(JSON.stringify(body));
    await until(() => engine.stats().running === 1, "the non-streaming request to run");
    request.destroy();
    await until(() => engine.cancelled === 2 && engine.stats().running === 0, "the generation to stop");
    const metricsText = (await app.inject({ method: "GET", url: "/metrics" })).body;
    expect(metricsText).toContain(
      'berth_requests_total{model="memory-model",route="/v1/completions",code="499"} 2',
    );
  });
});

describe("request logs", () => {
  function capturingLogger(lines: Array<Record<string, unknown>>) {
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split("\n")) if (line.length > 0) lines.push(JSON.parse(line));
        done();
      },
    });
    return createLogger({ level: "info" }, destination);
  }

  it.each([
    { logPrompts: false, expectPrompt: undefined, expectCompletion: undefined },
    { logPrompts: true, expectPrompt: "secret prompt", expectCompletion: " and" },
  ])(
    "writes one line per request with ids, tokens and timings; prompts only with logPrompts=$logPrompts",
    async (testCase) => {
      const lines: Array<Record<string, unknown>> = [];
      const app = await appWith(new MemoryEngine(), {
        logger: capturingLogger(lines),
        logPrompts: testCase.logPrompts,
      });
      await app.inject({
        method: "POST",
        url: "/v1/completions",
        headers: { "x-request-id": "req-42" },
        payload: { model: "memory-model", prompt: "secret prompt", max_tokens: 4 },
      });
      const line = lines.find((entry) => entry.msg === "request completed");
      expect(line).toMatchObject({
        reqId: "req-42",
        model: "memory-model",
        route: "/v1/completions",
        status: 200,
        promptTokens: 13,
        completionTokens: 4,
        finishReason: "length",
      });
      expect(typeof line?.durationMs).toBe("number");
      expect(line?.prompt).toBe(testCase.expectPrompt);
      expect(line?.completion).toBe(testCase.expectCompletion);
      if (!testCase.logPrompts) expect(JSON.stringify(lines)).not.toContain("secret");
    },
  );
});
