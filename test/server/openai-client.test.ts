// Acceptance 1 and 5: the official openai client against a live `berth serve` on the tiny model —
// completions and chat, plain and streamed; a stream left early cancels the generation on the server;
// 400/404/429 surface as the client's typed errors; x-request-id on every kind of response;
// greedy and seeded generation are deterministic across runs and across streaming and not.

import OpenAI, { BadRequestError, NotFoundError, RateLimitError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { metricValue, type ServeProcess, startServe, waitFor } from "../support/serve-process.js";

const MODEL = "tiny";
let server: ServeProcess;
let client: OpenAI;

beforeAll(async () => {
  const modelPath = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
  server = await startServe(["--model", modelPath, "--model-id", MODEL, "--parallel", "8"]);
  // maxRetries 0: a 429 or 5xx must surface, not be retried away.
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(() => server?.kill());

describe("the openai client against berth serve", () => {
  it("creates a completion", async () => {
    const { data, response } = await client.completions
      .create({ model: MODEL, prompt: "Hello world", max_tokens: 8, temperature: 0 })
      .withResponse();
    expect(response.headers.get("x-request-id")).toBeTruthy();
    expect(data.object).toBe("text_completion");
    expect(data.model).toBe(MODEL);
    const choice = data.choices[0]!;
    expect(["stop", "length"]).toContain(choice.finish_reason);
    expect(data.usage?.prompt_tokens).toBe(2);
    expect(data.usage?.completion_tokens).toBeGreaterThan(0);
    expect(data.usage?.completion_tokens).toBeLessThanOrEqual(8);
    expect(data.usage?.total_tokens).toBe(
      (data.usage?.prompt_tokens ?? 0) + (data.usage?.completion_tokens ?? 0),
    );
  });

  it("creates a chat completion", async () => {
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "Hi" },
      ],
      max_tokens: 6,
      temperature: 0,
    });
    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0]?.message.role).toBe("assistant");
    expect(typeof completion.choices[0]?.message.content).toBe("string");
    expect(completion.usage?.completion_tokens).toBeLessThanOrEqual(6);
  });

  it("streams a completion and a chat completion, with usage at the end when asked", async () => {
    const stream = await client.completions
      .create({
        model: MODEL,
        prompt: "Once upon a time",
        max_tokens: 6,
        temperature: 0,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      } as OpenAI.CompletionCreateParamsStreaming)
      .withResponse();
    expect(stream.response.headers.get("x-request-id")).toBeTruthy();
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finishReason: string | null | undefined;
    for await (const chunk of stream.data) {
      text += chunk.choices[0]?.text ?? "";
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(finishReason).toBe("length");
    expect(usage?.completion_tokens).toBe(6);
    expect(text.length).toBeGreaterThan(0);

    const chatStream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Tell me a story" }],
      max_tokens: 5,
      temperature: 0,
      stream: true,
    });
    let roles = 0;
    let content = "";
    for await (const chunk of chatStream) {
      if (chunk.choices[0]?.delta.role === "assistant") roles++;
      content += chunk.choices[0]?.delta.content ?? "";
    }
    expect(roles).toBe(1);
    expect(typeof content).toBe("string");
  });

  it("cancels the generation on the server when the client leaves a stream early", async () => {
    const generatedBefore = await metricValue(server.url, `berth_generated_tokens_total{model="${MODEL}"}`);
    const closedBefore = await metricValue(
      server.url,
      `berth_requests_total{model="${MODEL}",route="/v1/completions",code="499"}`,
    );
    const maxTokens = 1000;
    const stream = await client.completions.create({
      model: MODEL,
      prompt: "The",
      max_tokens: maxTokens,
      ignore_eos: true,
      stream: true,
    } as OpenAI.CompletionCreateParamsStreaming);
    let chunks = 0;
    for await (const _chunk of stream) {
      if (++chunks === 2) break; // the client aborts its request in the stream's finally
    }
    await waitFor(
      async () =>
        (await metricValue(server.url, `berth_requests_running{model="${MODEL}"}`)) === 0 &&
        (await metricValue(
          server.url,
          `berth_requests_total{model="${MODEL}",route="/v1/completions",code="499"}`,
        )) ===
          closedBefore + 1,
      "the cancelled generation to free its slot",
    );
    const generated =
      (await metricValue(server.url, `berth_generated_tokens_total{model="${MODEL}"}`)) - generatedBefore;
    expect(generated).toBeGreaterThanOrEqual(2);
    expect(generated).toBeLessThan(maxTokens);
  });

  it("raises BadRequestError and NotFoundError with the stable code and the request id", async () => {
    const bad = await client.completions
      .create({ model: MODEL, prompt: "Hi", max_tokens: 4, n: 2 })
      .catch((error: unknown) => error);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect((bad as BadRequestError).code).toBe("BERTH_INVALID_REQUEST");
    expect((bad as BadRequestError).param).toBe("n");
    expect((bad as BadRequestError).requestID).toBeTruthy();

    const missing = await client.chat.completions
      .create({ model: "gpt-17", messages: [{ role: "user", content: "Hi" }] })
      .catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).code).toBe("BERTH_MODEL_NOT_FOUND");

    // The server still answers normally afterwards.
    const after = await client.completions.create({
      model: MODEL,
      prompt: "Hi",
      max_tokens: 2,
      temperature: 0,
    });
    expect(after.choices).toHaveLength(1);
  });

  it("lists the served model", async () => {
    const models = await client.models.list();
    expect(models.data.map((model) => model.id)).toEqual([MODEL]);
  });
});

describe("batching, seen in the metrics", () => {
  it("decodes 8 concurrent requests together: the batch-size histogram has decodes of more than one sequence", async () => {
    const sample = (name: string) => metricValue(server.url, name);
    const singleBefore = await sample(`berth_batch_size_bucket{le="1",model="${MODEL}"}`);
    const allBefore = await sample(`berth_batch_size_count{model="${MODEL}"}`);
    const completions = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        client.completions.create({
          model: MODEL,
          prompt: `Story ${index}:`,
          max_tokens: 8,
          ignore_eos: true,
        } as OpenAI.CompletionCreateParamsNonStreaming),
      ),
    );
    for (const completion of completions) expect(completion.usage?.completion_tokens).toBe(8);
    const multiSequenceDecodes =
      (await sample(`berth_batch_size_count{model="${MODEL}"}`)) -
      allBefore -
      ((await sample(`berth_batch_size_bucket{le="1",model="${MODEL}"}`)) - singleBefore);
    expect(multiSequenceDecodes).toBeGreaterThan(0);
  });
});

describe("determinism", () => {
  async function completionText(params: Omit<OpenAI.CompletionCreateParamsNonStreaming, "model">) {
    const completion = await client.completions.create({ model: MODEL, ...params });
    return completion.choices[0]!.text;
  }

  async function streamedText(params: Omit<OpenAI.CompletionCreateParamsNonStreaming, "model">) {
    const stream = await client.completions.create({ model: MODEL, ...params, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    return text;
  }

  it.each([
    { name: "greedy", sampling: { temperature: 0, seed: 7 } },
    { name: "sampled with a fixed seed", sampling: { temperature: 0.9, top_p: 0.95, seed: 1234 } },
  ])("$name: the same text across runs and across streaming and not", async ({ sampling }) => {
    const params = { prompt: "The weather today is", max_tokens: 12, ignore_eos: true, ...sampling };
    const first = await completionText(params);
    const second = await completionText(params);
    const streamed = await streamedText(params);
    expect(first.length).toBeGreaterThan(0);
    expect(second).toBe(first);
    expect(streamed).toBe(first);
  });

  it("a fixed seed decides the sample: another seed gives another text", async () => {
    const params = { prompt: "The weather today is", max_tokens: 12, ignore_eos: true, temperature: 1.5 };
    const texts = new Set<string>();
    for (const seed of [1, 2, 3]) texts.add(await completionText({ ...params, seed }));
    expect(texts.size).toBeGreaterThan(1);
  });
});

describe("admission", () => {
  let small: ServeProcess;

  beforeAll(async () => {
    const modelPath = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
    small = await startServe([
      "--model",
      modelPath,
      "--model-id",
      MODEL,
      "--parallel",
      "1",
      "--max-queue",
      "0",
    ]);
  });

  afterAll(() => small?.kill());

  it("raises RateLimitError (429 with Retry-After) when the slot and the queue are full", async () => {
    const smallClient = new OpenAI({ baseURL: `${small.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const busy = new AbortController();
    const long = smallClient.completions
      .create(
        {
          model: MODEL,
          prompt: "The",
          max_tokens: 1000,
          ignore_eos: true,
          stream: true,
        } as OpenAI.CompletionCreateParamsStreaming,
        { signal: busy.signal },
      )
      .then(async (stream) => {
        for await (const _chunk of stream) {
          // consume until aborted
        }
      })
      .catch(() => undefined);
    await waitFor(
      async () => (await metricValue(small.url, `berth_requests_running{model="${MODEL}"}`)) === 1,
      "the first request to take the only slot",
    );
    const refused = await smallClient.completions
      .create({ model: MODEL, prompt: "Hi", max_tokens: 2 })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RateLimitError);
    expect((refused as RateLimitError).code).toBe("BERTH_OVERLOADED");
    expect((refused as RateLimitError).headers?.get("retry-after")).toBe("1");
    busy.abort();
    await long;
    await waitFor(
      async () => (await metricValue(small.url, `berth_requests_running{model="${MODEL}"}`)) === 0,
      "the slot to be freed",
    );
    const after = await smallClient.completions.create({ model: MODEL, prompt: "Hi", max_tokens: 2 });
    expect(after.choices).toHaveLength(1);
  });
});
