// Fuzzing the HTTP routes (fast-check) of the replica (the real llama.cpp engine on the tiny model,
// in process) and of the gateway in front of it: random methods, paths, headers, content types,
// bodies (JSON built from the API's own field names with values of every type, form, multipart,
// bytes, bodies over the limit). The properties: no 5xx except 503/504 (by design), every error in
// OpenAI's shape with a code, every answer within a deadline (no hang), and /healthz still answers
// after the run, as does a normal request. FUZZ_RUNS / FUZZ_SEED: see test/support/fuzz.ts.
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import type { FastifyInstance, InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLlamaEngine } from "../../src/engine/llamacpp.js";
import type { Engine } from "../../src/engine/types.js";
import { buildGateway, type Gateway } from "../../src/gateway/app.js";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { buildServerApp } from "../../src/server/app.js";
import { createLogger } from "../../src/util/log.js";
import { deployment, MemoryDirectory, upstream } from "../gateway/fixtures.js";
import { fuzzParameters } from "../support/fuzz.js";

const MODEL = "tiny";
const BODY_LIMIT = 64 * 1024;
const silent = createLogger({ level: "silent" });
let engine: Engine;
let replica: FastifyInstance;
let gateway: Gateway;

beforeAll(async () => {
  const modelPath = await ensureTinyModel({ shape: "tiny", dtype: "q8_0" });
  engine = await createLlamaEngine({
    modelPath,
    modelId: MODEL,
    parallel: 2,
    contextPerSequence: 256,
    threads: 1,
  });
  replica = await buildServerApp({
    engine,
    logger: silent,
    bodyLimitBytes: BODY_LIMIT,
    requestTimeoutMs: 10_000,
  });
  await replica.listen({ host: "127.0.0.1", port: 0 });
  const { port } = replica.server.address() as AddressInfo;
  const directory = new MemoryDirectory().addModel(MODEL, {
    deployment: deployment(MODEL),
    upstreams: [upstream("r1", `http://127.0.0.1:${port}`, MODEL)],
  });
  gateway = await buildGateway({
    directory,
    logger: silent,
    port: 0,
    dashboard: false,
    bodyLimitBytes: BODY_LIMIT,
    requestTimeoutMs: 10_000,
    shutdownGraceMs: 2_000,
  });
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await replica?.close();
  await engine?.close();
});

// ----------------------------------------------------------------------------------------------
// Arbitraries

const anyValue = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 53, 1e308, -1e308, "", "1", "NaN", "Infinity", "tiny"),
  fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), { maxLength: 5 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
);

/** Small sizes most of the time, so the engine generates little; anything at all sometimes. */
const tokenCount = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 4 }) },
  { weight: 1, arbitrary: anyValue },
);

const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom("system", "user", "assistant", "tool", "developer"), anyValue),
    content: fc.oneof(
      fc.string({ maxLength: 40 }),
      anyValue,
      fc.array(
        fc.record({ type: fc.constantFrom("text", "image_url", "x"), text: anyValue }, { requiredKeys: [] }),
        {
          maxLength: 3,
        },
      ),
    ),
    name: anyValue,
  },
  { requiredKeys: [] },
);

const FIELD_NAMES = {
  model: 1,
  prompt: 1,
  messages: 1,
  text: 1,
  max_tokens: 1,
  max_length: 1,
  stream: 1,
  stream_options: 1,
  temperature: 1,
  top_p: 1,
  seed: 1,
  n: 1,
  stop: 1,
  logprobs: 1,
};

const apiBody = fc.record(
  {
    model: fc.oneof({ weight: 4, arbitrary: fc.constant(MODEL) }, { weight: 1, arbitrary: anyValue }),
    prompt: fc.oneof(
      fc.string({ maxLength: 60 }),
      anyValue,
      fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
    ),
    messages: fc.oneof(fc.array(message, { maxLength: 4 }), anyValue),
    text: fc.oneof(fc.string({ maxLength: 60 }), anyValue),
    max_tokens: tokenCount,
    max_completion_tokens: tokenCount,
    max_length: fc.oneof(fc.integer({ min: 0, max: 12 }), anyValue),
    stream: fc.oneof(fc.boolean(), anyValue),
    stream_options: fc.oneof(fc.record({ include_usage: anyValue }), anyValue),
    temperature: fc.oneof(fc.double({ min: 0, max: 2, noNaN: true }), anyValue),
    top_p: anyValue,
    top_k: anyValue,
    seed: anyValue,
    n: anyValue,
    stop: fc.oneof(
      fc.string({ maxLength: 4 }),
      fc.array(fc.string({ maxLength: 4 }), { maxLength: 5 }),
      anyValue,
    ),
    presence_penalty: anyValue,
    frequency_penalty: anyValue,
    logprobs: anyValue,
    echo: anyValue,
    user: anyValue,
    response_format: anyValue,
    tools: anyValue,
  },
  { requiredKeys: [] },
);

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=latin1",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=fuzz",
  "multipart/form-data",
  "text/plain",
  "application/octet-stream",
  "*/*",
  "application/xml",
  "json",
  "",
];

const printable = fc.string({
  unit: fc.constantFrom(..."abcXYZ019 -_.,;:=/*+\"'()[]{}?@!#$%&~^|".split("")),
  maxLength: 30,
});

function formEncode(body: Record<string, unknown>): string {
  return Object.entries(body)
    .map(
      ([key, value]) =>
        `${encodeURIComponent(key)}=${encodeURIComponent(typeof value === "string" ? value : (JSON.stringify(value) ?? ""))}`,
    )
    .join("&");
}

function multipart(body: Record<string, unknown>): string {
  const parts = Object.entries(body).map(
    ([key, value]) =>
      `--fuzz\r\nContent-Disposition: form-data; name="${key}"\r\n\r\n${typeof value === "string" ? value : JSON.stringify(value)}\r\n`,
  );
  return `${parts.join("")}--fuzz--\r\n`;
}

const OVERSIZED = Buffer.alloc(BODY_LIMIT + 1, "x");

const payload = fc.oneof(
  { weight: 6, arbitrary: apiBody.map((body) => JSON.stringify(body)) },
  { weight: 2, arbitrary: apiBody.map(formEncode) },
  { weight: 1, arbitrary: apiBody.map(multipart) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 2000 }).map((depth) => "[".repeat(depth) + "]".repeat(depth)),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(OVERSIZED, "", "null", "{}", "[]", '"text"', "1e999", '{"prompt":'),
  },
);

const PATHS = [
  "/v1/completions",
  "/v1/chat/completions",
  "/generate",
  "/v1/models",
  `/v1/models/${MODEL}`,
  "/v1/models/other",
  "/healthz",
  "/readyz",
  "/metrics",
  "/",
  "/v1",
  "/generate?text=hi",
  "/v1/completions?stream=true",
  "/v1/completions/",
  "//generate",
  "/v1/../generate",
  "/%ZZ",
  "/v1/models/%00",
];

const randomRequest = fc.record({
  method: fc.oneof(
    { weight: 6, arbitrary: fc.constant("POST" as const) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        "GET" as const,
        "PUT" as const,
        "DELETE" as const,
        "PATCH" as const,
        "OPTIONS" as const,
        "HEAD" as const,
      ),
    },
  ),
  url: fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...PATHS) },
    { weight: 1, arbitrary: printable.map((path) => `/${path}`) },
  ),
  contentType: fc.option(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
      { weight: 1, arbitrary: printable },
    ),
  ),
  timeout: fc.option(
    fc.oneof(fc.constantFrom("0", "-1", "1", "50", "abc", "1e12", "99999999999999999999", ""), printable),
  ),
  requestId: fc.option(printable),
  accept: fc.option(fc.constantFrom("text/event-stream", "application/json", "*/*", "text/html", "")),
  authorization: fc.option(printable),
  payload,
});

type FuzzRequest = typeof randomRequest extends fc.Arbitrary<infer T> ? T : never;

// Requests that are valid but for zero to two fields of any value: they reach the engine, streams
// included, and probe each field's validation one at a time.
const text = fc.string({ maxLength: 40 });
const smallTokens = fc.integer({ min: 0, max: 4 });
const sampling = {
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
  top_p: fc.double({ min: 0, max: 1, noNaN: true }),
  seed: fc.integer({ min: 0, max: 1000 }),
  stop: fc.oneof(fc.string({ maxLength: 3 }), fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 })),
};
const validBodies: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  "/v1/completions": fc.record(
    { model: fc.constant(MODEL), prompt: text, max_tokens: smallTokens, stream: fc.boolean(), ...sampling },
    { requiredKeys: ["model", "prompt", "max_tokens"] },
  ),
  "/v1/chat/completions": fc.record(
    {
      model: fc.constant(MODEL),
      messages: fc.array(fc.record({ role: fc.constantFrom("system", "user", "assistant"), content: text }), {
        minLength: 1,
        maxLength: 3,
      }),
      max_tokens: smallTokens,
      stream: fc.boolean(),
      ...sampling,
    },
    { requiredKeys: ["model", "messages", "max_tokens"] },
  ),
  "/generate": fc.record({ text, max_length: fc.integer({ min: 1, max: 12 }) }, { requiredKeys: ["text"] }),
};

const nearlyValidRequest = fc.constantFrom(...Object.keys(validBodies)).chain((url) =>
  fc.record({
    method: fc.constant("POST" as const),
    url: fc.constant(url),
    contentType: fc.constantFrom<string | null>("application/json", "application/json; charset=utf-8"),
    timeout: fc.option(fc.constantFrom("1", "50", "5000", "abc")),
    requestId: fc.option(printable),
    accept: fc.option(fc.constantFrom("text/event-stream", "application/json")),
    authorization: fc.constant(null),
    payload: fc
      .tuple(
        validBodies[url]!,
        fc.dictionary(fc.constantFrom(...Object.keys(FIELD_NAMES)), anyValue, { maxKeys: 2 }),
      )
      .map(([body, overrides]) => JSON.stringify({ ...body, ...overrides })),
  }),
);

const request: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { weight: 1, arbitrary: nearlyValidRequest },
  { weight: 1, arbitrary: randomRequest },
);

function injectOptions(input: FuzzRequest): InjectOptions {
  const headers: Record<string, string> = {};
  if (input.contentType !== null) headers["content-type"] = input.contentType;
  if (input.timeout !== null) headers["x-berth-timeout-ms"] = input.timeout;
  if (input.requestId !== null) headers["x-request-id"] = input.requestId;
  if (input.accept !== null) headers.accept = input.accept;
  if (input.authorization !== null) headers.authorization = input.authorization;
  const options: InjectOptions = { method: input.method, url: input.url, headers };
  if (input.method !== "GET" && input.method !== "HEAD") options.payload = input.payload;
  return options;
}

// ----------------------------------------------------------------------------------------------
// Properties

const ANSWER_DEADLINE_MS = 30_000;

/** Answers by status, so the test can show the fuzz reached the engine (200s), not only validation. */
const statusCounts = new Map<number, number>();

async function expectSoundAnswer(app: FastifyInstance, input: FuzzRequest): Promise<void> {
  const options = injectOptions(input);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${ANSWER_DEADLINE_MS} ms (a hang)`)),
      ANSWER_DEADLINE_MS,
    );
  });
  const response = await Promise.race([app.inject(options), deadline]).finally(() => clearTimeout(timer));
  const where = `${input.method} ${input.url} → ${response.statusCode}: ${response.body.slice(0, 300)}`;
  const status = response.statusCode;
  statusCounts.set(status, (statusCounts.get(status) ?? 0) + 1);
  expect(status >= 500 && status !== 503 && status !== 504, `a 5xx not by design: ${where}`).toBe(false);
  expect(status, where).toBeGreaterThanOrEqual(200);
  if (String(response.headers["content-type"]).startsWith("text/event-stream")) {
    // A started stream ends with [DONE] or with an error event, never just stops.
    const events = response.body.split("\n\n").filter((event) => event.length > 0);
    const last = events.at(-1) ?? "";
    const ended = last === "data: [DONE]" || /^data: \{"error":/.test(last);
    expect(ended, `a stream that just stops: ${where} … ${last.slice(0, 200)}`).toBe(true);
  }
  if (status >= 400 && input.method !== "HEAD") {
    const body = response.json() as { error?: { message?: unknown; code?: unknown; type?: unknown } };
    expect(typeof body.error?.message, where).toBe("string");
    expect(typeof body.error?.code, where).toBe("string");
    expect(typeof body.error?.type, where).toBe("string");
  }
}

/** Some generated requests were valid and answered by the engine (else the fuzz tests only refusals). */
function expectSomeServed(): void {
  const served = (statusCounts.get(200) ?? 0) + (statusCounts.get(201) ?? 0);
  expect(served, JSON.stringify(Object.fromEntries(statusCounts))).toBeGreaterThan(0);
  statusCounts.clear();
}

async function expectStillServing(app: FastifyInstance): Promise<void> {
  const health = await app.inject({ method: "GET", url: "/healthz" });
  expect(health.statusCode).toBe(200);
  const completion = await app.inject({
    method: "POST",
    url: "/v1/completions",
    payload: { model: MODEL, prompt: "Hello", max_tokens: 3 },
  });
  expect(completion.statusCode, completion.body).toBe(200);
}

describe("HTTP fuzz: no 5xx but 503/504, errors in OpenAI's shape, no hang, still serving", () => {
  it("the replica (real llama.cpp engine)", async () => {
    await fc.assert(
      fc.asyncProperty(request, (input) => expectSoundAnswer(replica, input)),
      fuzzParameters(150),
    );
    console.log("replica answers by status", JSON.stringify(Object.fromEntries(statusCounts)));
    expectSomeServed();
    await expectStillServing(replica);
  });

  it("the gateway in front of it", async () => {
    await fc.assert(
      fc.asyncProperty(request, (input) => expectSoundAnswer(gateway.app, input)),
      fuzzParameters(150),
    );
    console.log("gateway answers by status", JSON.stringify(Object.fromEntries(statusCounts)));
    expectSomeServed();
    await expectStillServing(gateway.app);
  });
});
