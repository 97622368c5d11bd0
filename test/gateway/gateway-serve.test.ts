// Acceptance 5, 6 and 7 from the gateway's side, end to end: the gateway in front of three real
// `berth serve` processes on the tiny model (an in-test directory lists them). Least-load under a
// busy replica, auth and rate limits with keys that reach no log, streaming with the official openai
// client and cancellation down to the replica, and a replica that hangs (SIGSTOP: a real process
// that accepts connections and never answers) taken out of rotation.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { AuthenticationError, NotFoundError, RateLimitError } from "openai";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildGateway, type Gateway, type GatewayOptions } from "../../src/gateway/app.js";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { metricValue, type ServeProcess, startServe, waitFor } from "../support/serve-process.js";
import { captureLogger, deployment, MemoryDirectory, upstream } from "./fixtures.js";

const MODEL = "tiny";
const REPLICAS = ["r1", "r2", "r3"];
const KEYS = { alice: "sk-berth-alice-7f3a9c", bob: "sk-berth-bob-19d2e0" };

let servers: ServeProcess[] = [];
const gateways: Gateway[] = [];

beforeAll(async () => {
  const modelPath = await ensureTinyModel({ shape: "tiny", dtype: "q8_0" });
  servers = await Promise.all(
    REPLICAS.map(() =>
      startServe(["--model", modelPath, "--model-id", MODEL, "--parallel", "4", "--threads", "1"]),
    ),
  );
});

afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.close()));
  for (const server of servers) {
    // A stopped process group is killed all the same; SIGCONT first so nothing stays stopped.
    if (server.child.pid) {
      try {
        process.kill(-server.child.pid, "SIGCONT");
      } catch {}
    }
    server.kill();
  }
});

function directoryOf(spec: Record<string, unknown> = {}): MemoryDirectory {
  return new MemoryDirectory().addModel(MODEL, {
    deployment: deployment(MODEL, spec),
    upstreams: servers.map((server, index) => upstream(REPLICAS[index]!, server.url, MODEL)),
  });
}

async function startGateway(directory: MemoryDirectory, options: Partial<GatewayOptions> = {}) {
  const capture = captureLogger();
  const gateway = await buildGateway({
    directory,
    logger: capture.logger,
    port: 0,
    shutdownGraceMs: 5_000,
    ...options,
  });
  gateways.push(gateway);
  return { gateway, url: await gateway.listen(), logs: capture.text };
}

/** Completed API requests a replica counted itself (its own /metrics, not the gateway's view). */
async function replicaCompletions(server: ServeProcess): Promise<number> {
  return metricValue(server.url, `berth_requests_total{model="${MODEL}",route="/v1/completions",code="200"}`);
}

describe("least-load balancing (acceptance 5)", () => {
  it("sends new requests to the other replicas while one is busy with long requests", async () => {
    const directory = directoryOf();
    // Only r1 is ready at first, so the long requests land there.
    directory.setState(MODEL, "r2", "starting");
    directory.setState(MODEL, "r3", "starting");
    const { url, gateway } = await startGateway(directory);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
    const longStreams = await Promise.all(
      [1, 2].map(() =>
        client.completions.create({
          model: MODEL,
          prompt: "Once upon a time",
          max_tokens: 1000,
          ignore_eos: true,
          stream: true,
        } as OpenAI.CompletionCreateParamsStreaming),
      ),
    );
    const longIterators = longStreams.map((stream) => stream[Symbol.asyncIterator]());
    await Promise.all(longIterators.map((iterator) => iterator.next()));
    expect(gateway.load.load(MODEL).perUpstream).toEqual({ r1: 2 });
    const before = await Promise.all(servers.map(replicaCompletions));

    directory.setState(MODEL, "r2", "ready");
    directory.setState(MODEL, "r3", "ready");
    const servedBy: string[] = [];
    for (let i = 0; i < 12; i++) {
      const { response } = await client.completions
        .create({ model: MODEL, prompt: `short ${i}`, max_tokens: 2 })
        .withResponse();
      servedBy.push(response.headers.get("x-berth-replica") ?? "?");
    }
    // The long requests were still running the whole time (else the comparison would prove nothing).
    expect(gateway.load.load(MODEL).perUpstream.r1).toBe(2);
    const after = await Promise.all(servers.map(replicaCompletions));
    const added = after.map((count, index) => count - before[index]!);
    expect(added[0]).toBe(0);
    expect(added[1]! + added[2]!).toBe(12);
    expect(servedBy.filter((replica) => replica === "r1")).toEqual([]);
    // Both idle replicas took a share.
    expect(added[1]).toBeGreaterThan(0);
    expect(added[2]).toBeGreaterThan(0);

    for (const stream of longStreams) stream.controller.abort();
    await waitFor(
      async () => (await metricValue(servers[0]!.url, `berth_requests_running{model="${MODEL}"}`)) === 0,
      "r1 to cancel the long generations",
    );
  });
});

describe("auth and rate limits (acceptance 6)", () => {
  let url: string;
  let logs: () => string;

  beforeAll(async () => {
    const directory = await mkdtemp(join(tmpdir(), "berth-keys-"));
    const keysFile = join(directory, "keys");
    await writeFile(keysFile, `# gateway keys\nalice ${KEYS.alice}\nbob ${KEYS.bob}\n`, { mode: 0o600 });
    ({ url, logs } = await startGateway(
      directoryOf({
        auth: { enabled: true, apiKeysFrom: `file:${keysFile}` },
        rateLimit: { requestsPerMinute: 3 },
      }),
    ));
  });

  function client(apiKey: string) {
    return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
  }

  it("answers 401 without a key and with a wrong key, 200 with a good one", async () => {
    const none = await request(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "hi", max_tokens: 2 }),
    });
    expect(none.statusCode).toBe(401);
    expect(await none.body.json()).toMatchObject({ error: { code: "BERTH_UNAUTHORIZED" } });
    const wrong = await client("sk-berth-alice-7f3a9d")
      .completions.create({ model: MODEL, prompt: "hi", max_tokens: 2 })
      .catch((error: unknown) => error);
    expect(wrong).toBeInstanceOf(AuthenticationError);
    expect((wrong as AuthenticationError).code).toBe("BERTH_UNAUTHORIZED");
    const good = await client(KEYS.alice).completions.create({ model: MODEL, prompt: "hi", max_tokens: 2 });
    expect(good.choices).toHaveLength(1);
  });

  it("answers 429 with Retry-After past a key's requests per minute", async () => {
    const bob = client(KEYS.bob);
    for (let i = 0; i < 3; i++) await bob.completions.create({ model: MODEL, prompt: "hi", max_tokens: 1 });
    const limited = await bob.completions
      .create({ model: MODEL, prompt: "hi", max_tokens: 1 })
      .catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(RateLimitError);
    const retryAfter = Number((limited as RateLimitError).headers?.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
  });

  it("writes the keys into no log, the gateway's or the replicas'", () => {
    const everything = logs() + JSON.stringify(servers.map((server) => server.logLines));
    expect(everything.length).toBeGreaterThan(0);
    for (const key of [...Object.values(KEYS), "sk-berth-alice-7f3a9d"])
      expect(everything).not.toContain(key);
  });
});

describe("streaming through the gateway with the openai client", () => {
  it("streams a completion and a chat completion to the end", async () => {
    const { url, gateway } = await startGateway(directoryOf());
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
    const stream = await client.completions.create({
      model: MODEL,
      prompt: "The harbour",
      max_tokens: 12,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(["length", "stop"]).toContain(finish);
    expect(usage?.completion_tokens).toBeGreaterThan(0);

    const chat = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: 5,
      stream: true,
    });
    const roles: string[] = [];
    for await (const chunk of chat) if (chunk.choices[0]?.delta.role) roles.push(chunk.choices[0].delta.role);
    expect(roles).toContain("assistant");
    const metrics = await gateway.metrics.registry.metrics();
    expect(metrics).toMatch(
      /berth_time_to_first_token_seconds_count\{model="tiny",route="\/v1\/completions"\} 1/,
    );
  });

  it("cancels the generation on the replica when the client stops reading early", async () => {
    const { url, gateway } = await startGateway(directoryOf());
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
    const stream = await client.completions.create({
      model: MODEL,
      prompt: "A long story:",
      max_tokens: 1000,
      ignore_eos: true,
      stream: true,
    } as OpenAI.CompletionCreateParamsStreaming);
    let chunks = 0;
    for await (const _chunk of stream) if (++chunks === 3) break;
    const replica = Object.keys(gateway.load.load(MODEL).perUpstream)[0];
    const server = servers[REPLICAS.indexOf(replica ?? "r1")]!;
    await waitFor(
      async () => (await metricValue(server.url, `berth_requests_running{model="${MODEL}"}`)) === 0,
      "the replica to cancel the generation",
    );
    await waitFor(async () => gateway.load.load(MODEL).inFlight === 0, "the gateway to finish the request");
  });

  it("surfaces an unknown model as the client's NotFoundError with the gateway's code", async () => {
    const { url } = await startGateway(directoryOf());
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
    const error = await client.completions
      .create({ model: "nope", prompt: "x" })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).code).toBe("BERTH_MODEL_NOT_FOUND");
    expect((error as NotFoundError).requestID).toBeTruthy();
  });
});

describe("a replica that hangs (acceptance 7)", () => {
  it("is taken out of rotation: requests go elsewhere or get 504, none hangs", async () => {
    const { url, gateway, logs } = await startGateway(directoryOf(), {
      proxy: { stallProbeAfterMs: 500 },
      probeTimeoutMs: 500,
    });
    const hung = servers[2]!;
    // SIGSTOP the whole process group: the kernel still accepts connections, nothing answers.
    process.kill(-hung.child.pid!, "SIGSTOP");
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
    const outcomes = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        client.completions
          .create({ model: MODEL, prompt: `question ${i}`, max_tokens: 2 })
          .withResponse()
          .then(({ response }) => response.headers.get("x-berth-replica") ?? "?")
          .catch((error: unknown) => `error ${(error as { status?: number }).status}`),
      ),
    );
    for (const outcome of outcomes) expect(["r1", "r2", "error 504"]).toContain(outcome);
    expect(outcomes.filter((outcome) => outcome === "r1" || outcome === "r2").length).toBeGreaterThan(0);
    expect(logs()).toMatch(/replica r3 taken out of rotation .*\(hung\)/);
    // Out of rotation: the next requests do not wait on it at all.
    for (let i = 0; i < 4; i++) {
      const { response } = await client.completions
        .create({ model: MODEL, prompt: "x", max_tokens: 1 })
        .withResponse();
      expect(response.headers.get("x-berth-replica")).not.toBe("r3");
    }

    // With only the hung replica left, a request gets 504 instead of waiting forever.
    const alone = new MemoryDirectory().addModel(MODEL, { upstreams: [upstream("r3", hung.url, MODEL)] });
    const lonely = await startGateway(alone, { proxy: { stallProbeAfterMs: 500 }, probeTimeoutMs: 500 });
    const lonelyClient = new OpenAI({
      baseURL: `${lonely.url}/v1`,
      apiKey: "unused",
      maxRetries: 0,
      timeout: 60_000,
    });
    const error = await lonelyClient.completions
      .create({ model: MODEL, prompt: "x", max_tokens: 1 })
      .catch((caught: unknown) => caught);
    expect((error as { status?: number }).status).toBe(504);
    expect((error as { code?: string }).code).toBe("BERTH_UPSTREAM_TIMEOUT");
    expect(await gateway.metrics.registry.metrics()).toMatch(
      /berth_gateway_ejections_total\{model="tiny",replica="r3",reason="hung"\} [1-9]/,
    );
    process.kill(-hung.child.pid!, "SIGCONT");
  });
});
