// The same bad request gets the same answer (status, code, message) from the gateway as from the
// replica behind it: a real `berth serve` on the tiny model, and the gateway in front of it.
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildGateway, type Gateway } from "../../src/gateway/app.js";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { type ServeProcess, startServe } from "../support/serve-process.js";
import { captureLogger, deployment, MemoryDirectory, upstream } from "./fixtures.js";

const MODEL = "tiny";
let server: ServeProcess;
let gateway: Gateway;
let gatewayUrl: string;

beforeAll(async () => {
  const modelPath = await ensureTinyModel({ shape: "tiny", dtype: "q8_0" });
  server = await startServe(["--model", modelPath, "--model-id", MODEL, "--parallel", "2", "--threads", "1"]);
  const directory = new MemoryDirectory().addModel(MODEL, {
    deployment: deployment(MODEL),
    upstreams: [upstream("r1", server.url, MODEL)],
  });
  gateway = await buildGateway({ directory, logger: captureLogger().logger, port: 0, dashboard: false });
  gatewayUrl = await gateway.listen();
});

afterAll(async () => {
  await gateway?.close();
  server?.kill();
});

interface Answer {
  status: number;
  code: unknown;
  message: unknown;
  retryAfter: unknown;
}

async function ask(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<Answer> {
  const response = await request(`${base}${path}`, {
    method: (init.method ?? "POST") as "POST",
    headers: init.headers ?? {},
    body: init.body ?? null,
  });
  const text = await response.body.text();
  let parsed: { error?: { code?: unknown; message?: unknown } } = {};
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: code and message stay undefined, and the comparison shows the difference.
  }
  return {
    status: response.statusCode,
    code: parsed.error?.code,
    message: parsed.error?.message,
    retryAfter: response.headers["retry-after"],
  };
}

const json = { "content-type": "application/json" };
const CASES: Array<{
  name: string;
  path: string;
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer };
  status: number;
}> = [
  {
    name: "a 5 MB body that is not JSON",
    path: "/v1/completions",
    init: { headers: json, body: Buffer.alloc(5 * 1024 * 1024, "x") },
    status: 413,
  },
  {
    name: "a 5 MB body with no content type",
    path: "/v1/completions",
    init: { body: Buffer.alloc(5 * 1024 * 1024, "x") },
    status: 413,
  },
  {
    name: "a wrong content type (text/plain)",
    path: "/v1/completions",
    init: { headers: { "content-type": "text/plain" }, body: '{"model":"tiny","prompt":"hi"}' },
    status: 415,
  },
  {
    name: "a form body on an OpenAI route",
    path: "/v1/chat/completions",
    init: { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "model=tiny" },
    status: 415,
  },
  {
    name: "a wrong content type on /generate",
    path: "/generate",
    init: { headers: { "content-type": "text/plain" }, body: "text=hello" },
    status: 415,
  },
  { name: "GET /generate", path: "/generate", init: { method: "GET" }, status: 405 },
  { name: "GET /v1/completions", path: "/v1/completions", init: { method: "GET" }, status: 405 },
  {
    name: "malformed JSON",
    path: "/v1/completions",
    init: { headers: json, body: '{"model": "tiny", "prompt": ' },
    status: 400,
  },
  {
    name: "10,000 stop strings",
    path: "/v1/completions",
    init: {
      headers: json,
      body: JSON.stringify({
        model: MODEL,
        prompt: "hi",
        stop: Array.from({ length: 10_000 }, (_, i) => `s${i}`),
      }),
    },
    status: 400,
  },
];

describe("gateway and replica answer a bad request alike", () => {
  for (const testCase of CASES) {
    it(`${testCase.name}: ${testCase.status}`, async () => {
      const atReplica = await ask(server.url, testCase.path, testCase.init);
      const atGateway = await ask(gatewayUrl, testCase.path, testCase.init);
      expect(atReplica.status).toBe(testCase.status);
      expect(typeof atReplica.code).toBe("string");
      expect(atGateway).toEqual(atReplica);
    });
  }

  it("names the real limit for 10,000 stop strings", async () => {
    const answer = await ask(gatewayUrl, "/v1/completions", CASES.at(-1)!.init);
    expect(answer.message).toMatch(/at most 4 stop sequences/);
  });
});
