// Checks a generation request and fills in its defaults, before anything is scheduled.
// Pure: the caller passes the model's limits and a seed source; errors are EngineErrors (BERTH_INVALID_REQUEST, ...).
import { contextOverflowError, invalidRequestError } from "./errors.js";
import type { SamplingOptions } from "./types.js";

export interface ResolvedSampling {
  maxTokens: number;
  temperature: number;
  topP: number;
  /** 0 = no top-k cut. */
  topK: number;
  /** Always set: requests without a seed get a random one, so equal prompts sampled at once still differ. */
  seed: number;
  stop: string[];
  presencePenalty: number;
  frequencyPenalty: number;
  ignoreEos: boolean;
}

/** Limits that do not depend on the model; the context limit is checked by checkFitsContext. */
export const SAMPLING_LIMITS = {
  temperatureMax: 2,
  penaltyAbsMax: 2,
  stopMaxCount: 16,
  stopMaxLength: 256,
} as const;

function finiteNumber(param: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw invalidRequestError(param, "must be a finite number");
  }
  return value;
}

function integer(param: string, value: unknown): number {
  const number = finiteNumber(param, value);
  if (!Number.isInteger(number)) throw invalidRequestError(param, "must be an integer");
  return number;
}

export function resolveSampling(options: SamplingOptions, randomSeed: () => number): ResolvedSampling {
  const maxTokens = integer("max_tokens", options.maxTokens);
  if (maxTokens < 1) throw invalidRequestError("max_tokens", "must be at least 1");

  const temperature =
    options.temperature === undefined ? 1 : finiteNumber("temperature", options.temperature);
  if (temperature < 0 || temperature > SAMPLING_LIMITS.temperatureMax) {
    throw invalidRequestError("temperature", `must be between 0 and ${SAMPLING_LIMITS.temperatureMax}`);
  }
  const topP = options.topP === undefined ? 1 : finiteNumber("top_p", options.topP);
  if (topP <= 0 || topP > 1) throw invalidRequestError("top_p", "must be greater than 0 and at most 1");
  const topK = options.topK === undefined ? 0 : integer("top_k", options.topK);
  if (topK < 0) throw invalidRequestError("top_k", "must be 0 (off) or more");

  // llama.cpp seeds are 32-bit; any integer is accepted and folded into that range.
  const seed =
    options.seed === undefined
      ? randomSeed()
      : ((integer("seed", options.seed) % 2 ** 32) + 2 ** 32) % 2 ** 32;

  const presencePenalty = penalty("presence_penalty", options.presencePenalty);
  const frequencyPenalty = penalty("frequency_penalty", options.frequencyPenalty);

  const stop = options.stop ?? [];
  if (!Array.isArray(stop)) throw invalidRequestError("stop", "must be a list of strings");
  if (stop.length > SAMPLING_LIMITS.stopMaxCount) {
    throw invalidRequestError("stop", `at most ${SAMPLING_LIMITS.stopMaxCount} sequences`);
  }
  for (const sequence of stop) {
    if (typeof sequence !== "string" || sequence.length === 0) {
      throw invalidRequestError("stop", "each stop sequence must be a non-empty string");
    }
    if (sequence.length > SAMPLING_LIMITS.stopMaxLength) {
      throw invalidRequestError(
        "stop",
        `each stop sequence must be at most ${SAMPLING_LIMITS.stopMaxLength} characters`,
      );
    }
  }
  if (options.ignoreEos !== undefined && typeof options.ignoreEos !== "boolean") {
    throw invalidRequestError("ignore_eos", "must be a boolean");
  }

  return {
    maxTokens,
    temperature,
    topP,
    topK,
    seed,
    stop: [...stop],
    presencePenalty,
    frequencyPenalty,
    ignoreEos: options.ignoreEos ?? false,
  };
}

function penalty(param: string, value: number | undefined): number {
  if (value === undefined) return 0;
  const number = finiteNumber(param, value);
  if (Math.abs(number) > SAMPLING_LIMITS.penaltyAbsMax) {
    throw invalidRequestError(
      param,
      `must be between -${SAMPLING_LIMITS.penaltyAbsMax} and ${SAMPLING_LIMITS.penaltyAbsMax}`,
    );
  }
  return number;
}

/** Token-id prompts must be non-empty and name tokens of the vocabulary. */
export function checkPromptTokens(tokens: readonly number[], vocabularySize: number): void {
  if (tokens.length === 0) throw invalidRequestError("prompt", "must contain at least one token");
  for (const token of tokens) {
    if (!Number.isInteger(token) || token < 0 || token >= vocabularySize) {
      throw invalidRequestError(
        "prompt",
        `token ${String(token)} is not in the vocabulary (0..${vocabularySize - 1})`,
      );
    }
  }
}

/**
 * A sequence of C cells holds the prompt and every generated token but the last (which is sampled,
 * never evaluated), so prompt + max_tokens ≤ C generates without shifting the context.
 */
export function checkFitsContext(promptTokens: number, maxTokens: number, contextPerSequence: number): void {
  if (promptTokens + maxTokens > contextPerSequence) {
    throw contextOverflowError(promptTokens, maxTokens, contextPerSequence);
  }
}
