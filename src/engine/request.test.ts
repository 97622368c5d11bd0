// resolveSampling / checkPromptTokens / checkFitsContext: defaults, ranges and the overflow message.
import { describe, expect, it } from "vitest";
import { EngineError } from "./errors.js";
import { checkFitsContext, checkPromptTokens, resolveSampling } from "./request.js";
import type { SamplingOptions } from "./types.js";

function codeAndParam(action: () => unknown): { code: string; param: string | undefined } {
  try {
    action();
  } catch (error) {
    if (error instanceof EngineError) return { code: error.code, param: error.param };
    throw error;
  }
  throw new Error("no error");
}

describe("resolveSampling", () => {
  it("fills OpenAI-like defaults and a random seed", () => {
    expect(resolveSampling({ maxTokens: 5 }, () => 1234)).toEqual({
      maxTokens: 5,
      temperature: 1,
      topP: 1,
      topK: 0,
      seed: 1234,
      stop: [],
      presencePenalty: 0,
      frequencyPenalty: 0,
      ignoreEos: false,
    });
  });

  it("folds any integer seed into 32 bits", () => {
    expect(resolveSampling({ maxTokens: 1, seed: -1 }, () => 0).seed).toBe(2 ** 32 - 1);
    expect(resolveSampling({ maxTokens: 1, seed: 2 ** 32 + 5 }, () => 0).seed).toBe(5);
  });

  it.each<[SamplingOptions, string]>([
    [{ maxTokens: 0 }, "max_tokens"],
    [{ maxTokens: 2.5 }, "max_tokens"],
    [{ maxTokens: 1, temperature: 2.5 }, "temperature"],
    [{ maxTokens: 1, temperature: Number.POSITIVE_INFINITY }, "temperature"],
    [{ maxTokens: 1, topP: 0 }, "top_p"],
    [{ maxTokens: 1, topP: 1.1 }, "top_p"],
    [{ maxTokens: 1, topK: -3 }, "top_k"],
    [{ maxTokens: 1, seed: 1.5 }, "seed"],
    [{ maxTokens: 1, presencePenalty: -2.1 }, "presence_penalty"],
    [{ maxTokens: 1, frequencyPenalty: 9 }, "frequency_penalty"],
    [{ maxTokens: 1, stop: ["ok", ""] }, "stop"],
    [{ maxTokens: 1, stop: Array.from({ length: 17 }, () => "x") }, "stop"],
  ])("%j is refused naming %s", (options, param) => {
    expect(codeAndParam(() => resolveSampling(options, () => 0))).toEqual({
      code: "BERTH_INVALID_REQUEST",
      param,
    });
  });
});

describe("checkPromptTokens", () => {
  it("accepts tokens of the vocabulary and refuses others", () => {
    expect(() => checkPromptTokens([0, 50256], 50257)).not.toThrow();
    for (const tokens of [[], [50257], [-1], [1.5]]) {
      expect(codeAndParam(() => checkPromptTokens(tokens, 50257))).toEqual({
        code: "BERTH_INVALID_REQUEST",
        param: "prompt",
      });
    }
  });
});

describe("checkFitsContext", () => {
  it("allows prompt + max_tokens up to the context and names the numbers beyond it", () => {
    expect(() => checkFitsContext(1000, 24, 1024)).not.toThrow();
    try {
      checkFitsContext(1000, 25, 1024);
      throw new Error("no error");
    } catch (error) {
      expect(error).toBeInstanceOf(EngineError);
      expect((error as EngineError).code).toBe("BERTH_CONTEXT_OVERFLOW");
      expect((error as EngineError).message).toBe(
        "prompt (1000 tokens) + max_tokens (25) exceeds the context (1024 tokens per sequence)",
      );
      expect((error as EngineError).details).toEqual({
        promptTokens: 1000,
        maxTokens: 25,
        contextPerSequence: 1024,
      });
    }
  });
});
