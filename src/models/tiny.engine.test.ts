// Acceptance: the tiny models load in the real engine (node-llama-cpp), tokenize exactly as GPT-2
// does, detokenize back, and generate; for f16, q8_0 and f32. Models come from the test BERTH_HOME.
import type { Llama, LlamaModel, Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ensureTinyModel, GPT2_EOT_TOKEN, type TinyDtype } from "./tiny.js";

const SENTENCE = "Hello world, this is a test.";
const SENTENCE_TOKENS = [15496, 995, 11, 428, 318, 257, 1332, 13];

let llama: Llama;

beforeAll(async () => {
  const { getLlama } = await import("node-llama-cpp");
  llama = await getLlama({ gpu: false, maxThreads: 2 });
});

afterAll(async () => {
  await llama?.dispose();
});

async function greedy(model: LlamaModel, prompt: string, count: number): Promise<number[]> {
  const context = await model.createContext({ contextSize: 128 });
  try {
    const sequence = context.getSequence();
    const generated: number[] = [];
    for await (const token of sequence.evaluate(model.tokenize(prompt), { temperature: 0 })) {
      generated.push(token);
      if (generated.length >= count) break;
    }
    return generated;
  } finally {
    await context.dispose();
  }
}

describe.each<TinyDtype>(["f16", "q8_0", "f32"])("tiny %s in node-llama-cpp", (dtype) => {
  let model: LlamaModel;

  beforeAll(async () => {
    model = await llama.loadModel({ modelPath: await ensureTinyModel({ shape: "tiny", dtype }) });
  });

  afterAll(async () => {
    await model?.dispose();
  });

  test("tokenizes as GPT-2 does and detokenizes back", () => {
    const tokens = model.tokenize(SENTENCE);
    expect([...tokens]).toEqual(SENTENCE_TOKENS);
    expect(model.detokenize(tokens)).toBe(SENTENCE);
    const text = " naïve café — 東京\n\ttabs";
    expect(model.detokenize(model.tokenize(text))).toBe(text);
    expect(model.fileInfo.metadata.general.architecture).toBe("gpt2");
    expect(model.trainContextSize).toBe(1024);
  });

  test("<|endoftext|> is a special (control) token, plain text otherwise", () => {
    expect([...model.tokenize("<|endoftext|>", true)]).toEqual([GPT2_EOT_TOKEN]);
    expect(model.tokenize("<|endoftext|>", false).length).toBeGreaterThan(1);
    expect(model.tokens.bos).toBe(GPT2_EOT_TOKEN);
    expect(model.tokens.eos).toBe(GPT2_EOT_TOKEN);
  });

  test("greedy generation yields varied, valid tokens", async () => {
    const generated = await greedy(model, SENTENCE, 12);
    expect(generated).toHaveLength(12);
    for (const token of generated) {
      expect(Number.isInteger(token)).toBe(true);
      expect(token).toBeGreaterThanOrEqual(0);
      expect(token).toBeLessThan(50257);
    }
    expect(new Set(generated).size).toBeGreaterThan(3);
    expect(typeof model.detokenize(generated as Token[])).toBe("string");
    // Deterministic: the same prompt gives the same greedy continuation.
    expect(await greedy(model, SENTENCE, 12)).toEqual(generated);
  });
});
