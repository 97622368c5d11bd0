// The llama.cpp engine end to end on the real tiny GPT-2-architecture model: batching, determinism,
// stop sequences, cancellation, limits, prefix reuse and multi-byte text. No timing thresholds.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../models/tiny.js";
import { EngineError } from "./errors.js";
import { createLlamaEngine } from "./llamacpp.js";
import { IncrementalDetokenizer } from "./text.js";
import type { Engine, GenerateRequest, GenerationResult } from "./types.js";

const PROMPT = "Hello world, this is a test.";

// One thread: the tiny model gains nothing from two, and on a busy shared machine OpenMP barriers
// across two threads make every decode wait for the scheduler.
let engine: Engine;
let modelPath: string;

beforeAll(async () => {
  modelPath = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
  engine = await createLlamaEngine({ modelPath, parallel: 8, contextPerSequence: 256, threads: 1 });
});

afterAll(async () => {
  await engine?.close();
});

async function collect(request: GenerateRequest): Promise<{ chunks: string[]; result: GenerationResult }> {
  const generation = engine.generate(request);
  const chunks: string[] = [];
  for await (const chunk of generation) chunks.push(chunk.text);
  return { chunks, result: await generation.result };
}

async function until(condition: () => boolean, what: string, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function engineErrorOf(action: () => unknown): EngineError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(EngineError);
    return error as EngineError;
  }
  throw new Error("expected an EngineError");
}

describe("llama.cpp engine", () => {
  it("reports the model and tokenizes with GPT-2's vocabulary", () => {
    expect(engine.info.architecture).toBe("gpt2");
    expect(engine.info.contextPerSequence).toBe(256);
    expect(engine.info.trainContextSize).toBe(1024);
    expect(engine.tokenize(PROMPT)).toEqual([15496, 995, 11, 428, 318, 257, 1332, 13]);
    expect(engine.detokenize([15496, 995, 11, 428, 318, 257, 1332, 13])).toBe(PROMPT);
    expect(engine.stats()).toMatchObject({ running: 0, waiting: 0, slots: 8 });
  });

  it("decodes 8 concurrent generations together, in full batches", async () => {
    const batches: number[] = [];
    const stop = engine.onBatch((sequences) => batches.push(sequences));
    try {
      const maxTokens = 16;
      const generations = Array.from({ length: 8 }, (_, index) =>
        engine.generate({ prompt: `${PROMPT} ${index}`, maxTokens, temperature: 0, ignoreEos: true }),
      );
      const results = await Promise.all(generations.map((generation) => generation.result));
      for (const result of results) {
        expect(result.finishReason).toBe("length");
        expect(result.completionTokens).toBe(maxTokens);
      }
      expect(Math.max(...batches)).toBe(8);
      // Structural proof the batch stays full: the first decode holds the 8 prompts and yields each
      // first token, then every decode holds all 8 sequences, so maxTokens decodes in all.
      expect(batches).toEqual(Array.from({ length: maxTokens }, () => 8));
    } finally {
      stop();
    }
    expect(engine.stats().running).toBe(0);
  });

  it("is deterministic with a fixed seed, streaming or not", async () => {
    const greedy = { prompt: PROMPT, maxTokens: 24, temperature: 0, seed: 42, ignoreEos: true };
    const first = await engine.generate(greedy).result;
    const second = await engine.generate(greedy).result;
    const streamed = await collect(greedy);
    expect(first.completionTokens).toBe(24);
    expect(second.text).toBe(first.text);
    expect(streamed.result.text).toBe(first.text);
    expect(streamed.chunks.join("")).toBe(first.text);

    const sampled = { prompt: PROMPT, maxTokens: 24, temperature: 0.9, topP: 0.95, topK: 40, seed: 7 };
    const a = await engine.generate(sampled).result;
    const b = await collect(sampled);
    expect(b.result.text).toBe(a.text);
    expect(b.chunks.join("")).toBe(a.text);
  });

  it("stops before a stop sequence that spans tokens and never streams it", async () => {
    const request = { prompt: PROMPT, maxTokens: 40, temperature: 0, ignoreEos: true };
    const free = await collect(request);
    // A stop string made of the end of one streamed chunk and the start of the next: it spans tokens.
    const boundary = free.chunks.findIndex(
      (chunk, index) => index > 2 && chunk.length >= 2 && (free.chunks[index + 1]?.length ?? 0) >= 2,
    );
    expect(boundary).toBeGreaterThan(0);
    const before = free.chunks.slice(0, boundary + 1).join("");
    const stop = before.slice(-2) + free.chunks[boundary + 1]!.slice(0, 2);
    const expected = free.result.text.slice(0, free.result.text.indexOf(stop));

    const stopped = await collect({ ...request, stop: ["\u0000never", stop] });
    expect(stopped.result.finishReason).toBe("stop");
    expect(stopped.result.text).toBe(expected);
    expect(stopped.chunks.join("")).toBe(expected);
    expect(stopped.chunks.join("")).not.toContain(stop);
    expect(stopped.result.completionTokens).toBeLessThan(40);
  });

  it("cancels through an AbortSignal between steps and frees the slot", async () => {
    const controller = new AbortController();
    const maxTokens = 200;
    const generation = engine.generate({
      prompt: PROMPT,
      maxTokens,
      temperature: 0,
      ignoreEos: true,
      signal: controller.signal,
    });
    let chunks = 0;
    for await (const _chunk of generation) {
      chunks++;
      if (chunks === 3) controller.abort();
    }
    const result = await generation.result;
    expect(result.finishReason).toBe("cancelled");
    expect(result.completionTokens).toBeLessThan(maxTokens);
    await until(() => engine.stats().running === 0, "the slot to be freed");
  });

  it("cancels when the consumer stops iterating early", async () => {
    const generation = engine.generate({ prompt: PROMPT, maxTokens: 200, temperature: 0, ignoreEos: true });
    for await (const _chunk of generation) break;
    const result = await generation.result;
    expect(result.finishReason).toBe("cancelled");
    expect(result.completionTokens).toBeLessThan(200);
    await until(() => engine.stats().running === 0, "the slot to be freed");
  });

  it("rejects a prompt that does not fit before scheduling, with the numbers", () => {
    const prompt = engine.tokenize(PROMPT);
    const error = engineErrorOf(() => engine.generate({ prompt, maxTokens: 256 - prompt.length + 1 }));
    expect(error.code).toBe("BERTH_CONTEXT_OVERFLOW");
    expect(error.message).toBe(
      `prompt (8 tokens) + max_tokens (${256 - 8 + 1}) exceeds the context (256 tokens per sequence)`,
    );
    expect(engine.stats()).toMatchObject({ running: 0, waiting: 0 });
  });

  it("rejects malformed requests as BERTH_INVALID_REQUEST", () => {
    const cases: GenerateRequest[] = [
      { prompt: "", maxTokens: 4 },
      { prompt: [], maxTokens: 4 },
      { prompt: [50257], maxTokens: 4 },
      { prompt: [-1], maxTokens: 4 },
      { prompt: PROMPT, maxTokens: 0 },
      { prompt: PROMPT, maxTokens: 1.5 },
      { prompt: PROMPT, maxTokens: 4, temperature: -1 },
      { prompt: PROMPT, maxTokens: 4, topP: 0 },
      { prompt: PROMPT, maxTokens: 4, topK: -1 },
      { prompt: PROMPT, maxTokens: 4, presencePenalty: 3 },
      { prompt: PROMPT, maxTokens: 4, frequencyPenalty: Number.NaN },
      { prompt: PROMPT, maxTokens: 4, stop: [""] },
    ];
    for (const request of cases) {
      expect(engineErrorOf(() => engine.generate(request)).code, JSON.stringify(request)).toBe(
        "BERTH_INVALID_REQUEST",
      );
    }
  });

  it("reuses a free slot's KV cache for a prompt sharing its prefix", async () => {
    const system = "You are a helpful assistant. Answer briefly and precisely, in plain words, please.";
    const prompt = engine.tokenize(system);
    expect(prompt.length).toBeGreaterThan(16);
    const first = await engine.generate({ prompt, maxTokens: 8, temperature: 0, ignoreEos: true }).result;
    expect(first.cachedPromptTokens).toBe(0);

    // The same prompt again: all but its last token come from the cache, and the output is unchanged.
    const again = await engine.generate({ prompt, maxTokens: 8, temperature: 0, ignoreEos: true }).result;
    expect(again.cachedPromptTokens).toBe(prompt.length - 1);
    expect(again.text).toBe(first.text);

    // A follow-up turn: the earlier prompt is a prefix of the new one.
    const followUp = [...prompt, ...engine.tokenize(" What is the capital of France?")];
    const next = await engine.generate({ prompt: followUp, maxTokens: 4, temperature: 0 }).result;
    expect(next.cachedPromptTokens).toBe(prompt.length);
    expect(next.promptTokens).toBe(followUp.length);
  });

  it("evaluates a long prompt in chunks while other sequences keep generating", async () => {
    const batches: Array<{ sequences: number; tokens: number }> = [];
    const stop = engine.onBatch((sequences, tokens) => batches.push({ sequences, tokens }));
    try {
      const running = engine.generate({ prompt: PROMPT, maxTokens: 60, temperature: 0, ignoreEos: true });
      const iterator = running[Symbol.asyncIterator]();
      await iterator.next(); // the first sequence is generating now
      const long = Array.from({ length: 180 }, (_, index) => 1000 + index);
      const joined = await engine.generate({ prompt: long, maxTokens: 4, temperature: 0, ignoreEos: true })
        .result;
      expect(joined.promptTokens).toBe(180);
      expect(joined.completionTokens).toBe(4);
      await iterator.return?.();
      await running.result;
    } finally {
      stop();
    }
    // No decode took more than one prefill chunk (128) plus the generating sequence's token.
    expect(Math.max(...batches.map((batch) => batch.tokens))).toBeLessThanOrEqual(129);
    expect(batches.some((batch) => batch.sequences === 2 && batch.tokens > 2)).toBe(true);
  });

  it("streams multi-byte characters split across tokens intact", async () => {
    const text = "naïve café — 日本語のテキスト 🙂👍🏽";
    const tokens = engine.tokenize(text);
    expect(engine.detokenize(tokens)).toBe(text);
    // GPT-2's byte-level BPE splits these characters over several tokens: feed them one by one.
    const detokenizer = new IncrementalDetokenizer((pending, previous) => {
      expect(previous.length).toBeLessThanOrEqual(8);
      return engine.detokenize(pending);
    });
    const pieces = tokens.map((token) => detokenizer.push(token));
    pieces.push(detokenizer.flush());
    expect(pieces.some((piece) => piece === "")).toBe(true);
    expect(pieces.join("")).toBe(text);
    for (const piece of pieces) expect(piece).not.toContain("\uFFFD");

    // Through the engine: a CJK prompt, chunks concatenate to the result and hold no broken halves.
    const streamed = await collect({ prompt: text, maxTokens: 32, temperature: 0, ignoreEos: true });
    expect(streamed.chunks.join("")).toBe(streamed.result.text);
    for (const chunk of streamed.chunks) expect(chunk).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});

describe("llama.cpp engine admission", () => {
  it("bounds the waiting queue and refuses with BERTH_OVERLOADED, then closes", async () => {
    const small = await createLlamaEngine({
      modelPath,
      parallel: 2,
      maxQueue: 1,
      contextPerSequence: 256,
      threads: 1,
    });
    try {
      const controller = new AbortController();
      const long = {
        prompt: PROMPT,
        maxTokens: 200,
        temperature: 0,
        ignoreEos: true,
        signal: controller.signal,
      };
      const running = [small.generate(long), small.generate(long)];
      const queued = small.generate(long);
      const error = engineErrorOf(() => small.generate(long));
      expect(error.code).toBe("BERTH_OVERLOADED");
      await until(() => small.stats().running === 2 && small.stats().waiting === 1, "2 running, 1 waiting");
      expect(small.stats().maxWaiting).toBe(1);

      // Closing ends in-flight and queued work with BERTH_ENGINE_CLOSED and refuses new requests.
      const closing = small.close();
      for (const generation of [...running, queued]) {
        await expect(generation.result).rejects.toMatchObject({ code: "BERTH_ENGINE_CLOSED" });
      }
      await closing;
      expect(engineErrorOf(() => small.generate(long)).code).toBe("BERTH_ENGINE_CLOSED");
    } finally {
      await small.close();
    }
  });
});
