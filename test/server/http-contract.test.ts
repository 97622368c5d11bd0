// Acceptance 2 and 3 against a live `berth serve` on the tiny model: the seed's curl request and its
// form-urlencoded and JSON variants, then a table of bad requests, each with its status and code,
// none of which reaches the engine, and a normal request that still succeeds afterwards.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { metricValue, type ServeProcess, startServe } from "../support/serve-process.js";

const run = promisify(execFile);
const MODEL = "tiny";
let server: ServeProcess;

beforeAll(async () => {
  const modelPath = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
  server = await startServe(["--model", modelPath, "--model-id", MODEL, "--parallel", "2"]);
});

afterAll(() => server?.kill());

async function curl(args: string[]): Promise<{ status: number; body: string; headers: string }> {
  const { stdout } = await run("curl", ["-sS", "-D", "-", ...args]);
  const split = stdout.indexOf("\r\n\r\n");
  const headers = stdout.slice(0, split);
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(headers)?.[1]);
  return { status, body: stdout.slice(split + 4), headers };
}

describe("the seed's POST /generate", () => {
  it("answers the seed's own curl request unchanged (multipart -F text=Hello)", async () => {
    const { status, body, headers } = await curl([
      "-X",
      "POST",
      "-F",
      "text=Hello",
      `${server.url}/generate`,
    ]);
    expect(status).toBe(200);
    expect(headers.toLowerCase()).toContain("x-request-id:");
    const parsed = JSON.parse(body) as { generated_text: string };
    expect(Object.keys(parsed)).toEqual(["generated_text"]);
    expect(parsed.generated_text.startsWith("Hello")).toBe(true);
    expect(parsed.generated_text.length).toBeGreaterThan("Hello".length);
  });

  it("answers the form-urlencoded and JSON variants", async () => {
    const form = await curl(["-X", "POST", "-d", "text=Hello&max_length=6", `${server.url}/generate`]);
    expect(form.status).toBe(200);
    expect((JSON.parse(form.body) as { generated_text: string }).generated_text.startsWith("Hello")).toBe(
      true,
    );
    const json = await curl([
      "-X",
      "POST",
      "-H",
      "content-type: application/json",
      "-d",
      JSON.stringify({ text: "Hello", max_length: 6 }),
      `${server.url}/generate`,
    ]);
    expect(json.status).toBe(200);
    const generated = (JSON.parse(json.body) as { generated_text: string }).generated_text;
    expect(generated.startsWith("Hello")).toBe(true);
    // Greedy, like the seed's generate(): the same prompt gives the same text whatever the body format.
    expect(generated).toBe((JSON.parse(form.body) as { generated_text: string }).generated_text);
  });
});

interface BadRequest {
  name: string;
  path?: string;
  contentType?: string;
  headers?: Record<string, string>;
  body: string | Uint8Array | Record<string, unknown> | unknown[];
  status: number;
  code: string;
  param?: string;
}

const completion = { model: MODEL, prompt: "Hello", max_tokens: 4 };
const chat = { model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 4 };

const BAD_REQUESTS: BadRequest[] = [
  { name: "malformed JSON", body: '{"model": "tiny", "prompt": ', status: 400, code: "BERTH_INVALID_JSON" },
  { name: "empty JSON body", body: "", status: 400, code: "BERTH_INVALID_JSON" },
  {
    name: "a JSON array instead of an object",
    body: [completion],
    status: 400,
    code: "BERTH_INVALID_REQUEST",
  },
  {
    name: "prompt is a number",
    body: { ...completion, prompt: 42 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "prompt",
  },
  {
    name: "empty prompt",
    body: { ...completion, prompt: "" },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "prompt",
  },
  {
    name: "two prompts",
    body: { ...completion, prompt: ["a", "b"] },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "prompt",
  },
  {
    name: "missing model",
    body: { prompt: "Hello" },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "model",
  },
  {
    name: "unknown model",
    body: { ...completion, model: "gpt-5" },
    status: 404,
    code: "BERTH_MODEL_NOT_FOUND",
    param: "model",
  },
  {
    name: "negative max_tokens",
    body: { ...completion, max_tokens: -1 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "max_tokens",
  },
  {
    name: "zero max_tokens",
    body: { ...completion, max_tokens: 0 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "max_tokens",
  },
  {
    name: "huge max_tokens",
    body: { ...completion, max_tokens: 1e12 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "max_tokens",
  },
  {
    name: "fractional max_tokens",
    body: { ...completion, max_tokens: 2.5 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "max_tokens",
  },
  {
    name: "max_tokens as a string",
    body: { ...completion, max_tokens: "4" },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "max_tokens",
  },
  {
    name: "prompt + max_tokens over the context",
    body: { ...completion, prompt: " hello".repeat(600), max_tokens: 600 },
    status: 400,
    code: "BERTH_CONTEXT_OVERFLOW",
  },
  {
    name: "temperature out of range",
    body: { ...completion, temperature: 2.5 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "temperature",
  },
  {
    name: "top_p out of range",
    body: { ...completion, top_p: 1.5 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "top_p",
  },
  {
    name: "presence_penalty out of range",
    body: { ...completion, presence_penalty: 3 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "presence_penalty",
  },
  { name: "n=2", body: { ...completion, n: 2 }, status: 400, code: "BERTH_INVALID_REQUEST", param: "n" },
  {
    name: "too many stop sequences",
    body: { ...completion, stop: ["a", "b", "c", "d", "e"] },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "stop",
  },
  {
    name: "an empty stop sequence",
    body: { ...completion, stop: "" },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "stop",
  },
  {
    name: "stream is not a boolean",
    body: { ...completion, stream: "yes" },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "stream",
  },
  {
    name: "fractional seed",
    body: { ...completion, seed: 1.5 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "seed",
  },
  {
    name: "logprobs requested",
    body: { ...completion, logprobs: 5 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "logprobs",
  },
  {
    name: "token id outside the vocabulary",
    body: { ...completion, prompt: [15496, 99_999_999] },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
  },
  {
    name: "empty messages",
    path: "/v1/chat/completions",
    body: { ...chat, messages: [] },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "messages",
  },
  {
    name: "a role that does not exist",
    path: "/v1/chat/completions",
    body: { ...chat, messages: [{ role: "wizard", content: "Hi" }] },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "messages[0].role",
  },
  {
    name: "messages is a string",
    path: "/v1/chat/completions",
    body: { ...chat, messages: "Hi" },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "messages",
  },
  {
    name: "tools (not supported)",
    path: "/v1/chat/completions",
    body: { ...chat, tools: [{ type: "function", function: { name: "f" } }] },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "tools",
  },
  {
    name: "invalid UTF-8 in a JSON body",
    body: new Uint8Array([...Buffer.from('{"model":"tiny","prompt":"'), 0xff, 0xfe, ...Buffer.from('"}')]),
    status: 400,
    code: "BERTH_INVALID_UTF8",
  },
  {
    name: "a body over the 1 MiB limit",
    body: { ...completion, prompt: "x".repeat(1024 * 1024 + 10) },
    status: 413,
    code: "BERTH_BODY_TOO_LARGE",
  },
  {
    name: "text/plain",
    contentType: "text/plain",
    body: "Hello",
    status: 415,
    code: "BERTH_UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "a form body on an OpenAI route",
    contentType: "application/x-www-form-urlencoded",
    body: "model=tiny&prompt=Hello",
    status: 415,
    code: "BERTH_UNSUPPORTED_MEDIA_TYPE",
  },
  {
    name: "a deadline header that is not a number",
    headers: { "x-berth-timeout-ms": "soon" },
    body: completion,
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "x-berth-timeout-ms",
  },
  {
    name: "/generate without text",
    path: "/generate",
    body: { max_length: 5 },
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "text",
  },
  {
    name: "/generate with max_length that is not a number",
    path: "/generate",
    contentType: "application/x-www-form-urlencoded",
    body: "text=Hello&max_length=abc",
    status: 400,
    code: "BERTH_INVALID_REQUEST",
    param: "max_length",
  },
  {
    name: "/generate with bad UTF-8 in a form",
    path: "/generate",
    contentType: "application/x-www-form-urlencoded",
    body: "text=%C3%28",
    status: 400,
    code: "BERTH_INVALID_UTF8",
  },
  {
    name: "an unknown route",
    path: "/v1/embeddings",
    body: { model: MODEL, input: "Hi" },
    status: 404,
    code: "BERTH_ROUTE_NOT_FOUND",
  },
];

describe("bad requests", () => {
  let promptTokensBefore = 0;

  beforeAll(async () => {
    promptTokensBefore = await metricValue(server.url, `berth_prompt_tokens_total{model="${MODEL}"}`);
  });

  it.each(BAD_REQUESTS)("$name → $status $code", async (badRequest) => {
    const body =
      typeof badRequest.body === "string" || badRequest.body instanceof Uint8Array
        ? badRequest.body
        : JSON.stringify(badRequest.body);
    const response = await fetch(`${server.url}${badRequest.path ?? "/v1/completions"}`, {
      method: "POST",
      headers: { "content-type": badRequest.contentType ?? "application/json", ...badRequest.headers },
      body,
    });
    const answer = (await response.json()) as {
      error: { code: string; message: string; type: string; param: string | null };
    };
    expect({ status: response.status, code: answer.error.code }).toEqual({
      status: badRequest.status,
      code: badRequest.code,
    });
    expect(answer.error.message.length).toBeGreaterThan(0);
    expect(answer.error.type).toBe("invalid_request_error");
    if (badRequest.param) expect(answer.error.param).toBe(badRequest.param);
    expect(response.headers.get("x-request-id")).toBeTruthy();
  });

  it("changed nothing: no prompt reached the engine, and a normal request still succeeds", async () => {
    expect(BAD_REQUESTS.length).toBeGreaterThanOrEqual(25);
    expect(await metricValue(server.url, `berth_prompt_tokens_total{model="${MODEL}"}`)).toBe(
      promptTokensBefore,
    );
    const response = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(completion),
    });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { usage: { prompt_tokens: number } };
    expect(answer.usage.prompt_tokens).toBe(1);
  });
});
