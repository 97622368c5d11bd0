// The OpenAI wire shapes the server answers with: completion and chat responses, stream chunks,
// usage and server-sent-event framing. Pure functions, so the shapes are tested without a server.

import type { FinishReason } from "../engine/types.js";

export type OpenAiFinishReason = "stop" | "length";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** As OpenAI's: prompt tokens served from the cache (here: a slot's KV cache), not evaluated again. */
  prompt_tokens_details: { cached_tokens: number };
}

export interface ResponseIdentity {
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
}

export function usageOf(promptTokens: number, completionTokens: number, cachedPromptTokens = 0): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedPromptTokens },
  };
}

/** The engine stops for "stop" (EOS or a stop sequence) or "length"; "cancelled" never reaches a client as a success. */
export function toOpenAiFinishReason(reason: FinishReason): OpenAiFinishReason {
  return reason === "length" ? "length" : "stop";
}

export function completionResponse(
  identity: ResponseIdentity,
  text: string,
  finishReason: OpenAiFinishReason,
  usage: Usage,
) {
  return {
    id: identity.id,
    object: "text_completion" as const,
    created: identity.created,
    model: identity.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
    usage,
  };
}

export function completionChunk(
  identity: ResponseIdentity,
  text: string,
  finishReason: OpenAiFinishReason | null,
  includeUsageField: boolean,
) {
  return {
    id: identity.id,
    object: "text_completion" as const,
    created: identity.created,
    model: identity.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
    // With stream_options.include_usage, OpenAI sends usage: null on every chunk but the last.
    ...(includeUsageField ? { usage: null } : {}),
  };
}

export function chatCompletionResponse(
  identity: ResponseIdentity,
  content: string,
  finishReason: OpenAiFinishReason,
  usage: Usage,
) {
  return {
    id: identity.id,
    object: "chat.completion" as const,
    created: identity.created,
    model: identity.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant" as const, content, refusal: null },
        logprobs: null,
        finish_reason: finishReason,
      },
    ],
    usage,
  };
}

export interface ChatDelta {
  role?: "assistant";
  content?: string;
}

export function chatCompletionChunk(
  identity: ResponseIdentity,
  delta: ChatDelta,
  finishReason: OpenAiFinishReason | null,
  includeUsageField: boolean,
) {
  return {
    id: identity.id,
    object: "chat.completion.chunk" as const,
    created: identity.created,
    model: identity.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(includeUsageField ? { usage: null } : {}),
  };
}

/** The last chunk of a stream with stream_options.include_usage: no choices, only usage. */
export function usageChunk(identity: ResponseIdentity, object: string, usage: Usage) {
  return {
    id: identity.id,
    object,
    created: identity.created,
    model: identity.model,
    choices: [],
    usage,
  };
}

export function modelList(models: Array<{ id: string; created: number }>) {
  return {
    object: "list" as const,
    data: models.map((model) => ({
      id: model.id,
      object: "model" as const,
      created: model.created,
      owned_by: "berth",
    })),
  };
}

/** One server-sent event carrying JSON. */
export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

/** The event that ends an OpenAI stream. */
export const SSE_DONE = "data: [DONE]\n\n";
