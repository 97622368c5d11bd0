// The OpenAI-compatible routes: POST /v1/completions, POST /v1/chat/completions (JSON or SSE
// streams ending in [DONE]) and GET /v1/models. Bodies are parsed with zod; the engine does the rest.

import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { Engine, SamplingOptions } from "../engine/types.js";
import { type ChatRenderer, chatRendererFor, normalizeMessages, tokenizePieces } from "./chat-template.js";
import { errorBody, HttpError, toHttpError } from "./errors.js";
import { GenerationRun } from "./generation.js";
import {
  type ChatDelta,
  chatCompletionChunk,
  chatCompletionResponse,
  completionChunk,
  completionResponse,
  modelList,
  type OpenAiFinishReason,
  type ResponseIdentity,
  SSE_DONE,
  sseData,
  toOpenAiFinishReason,
  usageChunk,
  usageOf,
} from "./openai-format.js";
import type { InferenceContext } from "./request-context.js";
import type { RouteDeps } from "./route-deps.js";
import {
  type ChatCompletionRequest,
  type CompletionRequest,
  chatCompletionRequestSchema,
  completionRequestSchema,
} from "./schemas.js";

type SamplingFields = Pick<
  CompletionRequest,
  | "temperature"
  | "top_p"
  | "top_k"
  | "seed"
  | "stop"
  | "presence_penalty"
  | "frequency_penalty"
  | "ignore_eos"
>;

/** OpenAI fields → engine options; null and absent mean "the default". */
export function samplingOptions(body: SamplingFields, maxTokens: number): SamplingOptions {
  const options: SamplingOptions = { maxTokens };
  if (body.temperature != null) options.temperature = body.temperature;
  if (body.top_p != null) options.topP = body.top_p;
  if (body.top_k != null && body.top_k > 0) options.topK = body.top_k;
  // OpenAI seeds are 64-bit integers; the engine's sampler takes 32 bits.
  if (body.seed != null) options.seed = Number(BigInt(body.seed) & 0xffffffffn);
  if (body.stop != null) options.stop = typeof body.stop === "string" ? [body.stop] : body.stop;
  if (body.presence_penalty != null) options.presencePenalty = body.presence_penalty;
  if (body.frequency_penalty != null) options.frequencyPenalty = body.frequency_penalty;
  if (body.ignore_eos != null) options.ignoreEos = body.ignore_eos;
  return options;
}

function checkModel(requested: string, engine: Engine): void {
  if (requested !== engine.info.id) {
    throw new HttpError(
      "BERTH_MODEL_NOT_FOUND",
      `the model '${requested.slice(0, 200)}' does not exist; this server serves '${engine.info.id}'`,
      { param: "model" },
    );
  }
}

/** The completions prompt forms OpenAI accepts, reduced to the single prompt Berth runs. */
function completionPrompt(prompt: CompletionRequest["prompt"]): string | number[] {
  if (typeof prompt === "string") return prompt;
  const first = prompt[0];
  if (typeof first === "string") return first;
  if (Array.isArray(first)) return first;
  return prompt as number[];
}

function identity(prefix: string, engine: Engine): ResponseIdentity {
  return {
    id: `${prefix}-${randomUUID().replaceAll("-", "")}`,
    created: Math.floor(Date.now() / 1000),
    model: engine.info.id,
  };
}

interface StreamShape {
  /** Chunks sent before any text (the chat stream's role chunk). */
  prelude: unknown[];
  text(text: string): unknown;
  finish(reason: OpenAiFinishReason): unknown;
  object: string;
  includeUsage: boolean;
}

/**
 * The SSE body of a streamed response. Errors after the headers went out (deadline, shutdown,
 * engine failure) become one `data: {"error":...}` event, which the openai client raises as an
 * APIError; a stream without [DONE] is never mistaken for a complete one.
 */
async function* streamEvents(
  run: GenerationRun,
  shape: StreamShape,
  ids: ResponseIdentity,
  context: InferenceContext,
  logPrompts: boolean,
): AsyncGenerator<string> {
  try {
    for (const chunk of shape.prelude) yield sseData(chunk);
    for await (const chunk of run.chunks()) {
      if (chunk.text.length === 0) continue;
      if (logPrompts) context.completion = (context.completion ?? "") + chunk.text;
      yield sseData(shape.text(chunk.text));
    }
    const result = await run.result();
    yield sseData(shape.finish(toOpenAiFinishReason(result.finishReason)));
    if (shape.includeUsage) {
      yield sseData(
        usageChunk(
          ids,
          shape.object,
          usageOf(result.promptTokens, result.completionTokens, result.cachedPromptTokens),
        ),
      );
    }
    yield SSE_DONE;
  } catch (error) {
    const httpError = toHttpError(error);
    context.outcome = httpError;
    if (httpError.code !== "BERTH_CLIENT_CLOSED_REQUEST") yield sseData(errorBody(httpError));
  } finally {
    run.close();
  }
}

/** Waits for the first token (so queueing errors still get their status), then streams. */
async function sendStream(reply: FastifyReply, run: GenerationRun, events: AsyncGenerator<string>) {
  try {
    await run.waitForFirstChunk();
  } catch (error) {
    run.close();
    throw error;
  }
  reply
    .header("content-type", "text/event-stream; charset=utf-8")
    .header("cache-control", "no-cache")
    // Proxies (nginx) must pass events through as they come.
    .header("x-accel-buffering", "no");
  // Readable.from pulls the next event only when the socket has taken the previous ones: backpressure.
  return reply.send(Readable.from(events, { objectMode: false }));
}

export function registerOpenAiRoutes(app: FastifyInstance, deps: RouteDeps): void {
  let chatRenderer: { engine: Engine; renderer: Promise<ChatRenderer> } | undefined;
  const chatPrompt = async (engine: Engine, body: ChatCompletionRequest): Promise<number[]> => {
    if (chatRenderer?.engine !== engine) {
      const renderer = chatRendererFor(engine.info.chatTemplate, (error) =>
        app.log.warn({ err: error }, "the model's chat template cannot be used; using the default template"),
      );
      chatRenderer = { engine, renderer };
    }
    const render = await chatRenderer.renderer;
    let pieces: ReturnType<ChatRenderer>;
    try {
      pieces = render(normalizeMessages(body.messages));
    } catch (error) {
      // Templates raise on conversations they do not accept (e.g. roles that do not alternate).
      throw new HttpError(
        "BERTH_INVALID_REQUEST",
        `the chat template rejected the messages: ${(error as Error).message}`,
        {
          param: "messages",
        },
      );
    }
    return tokenizePieces(engine, pieces);
  };

  app.get("/v1/models", async () => {
    const engine = deps.readyEngine();
    return modelList([{ id: engine.info.id, created: deps.modelCreated() }]);
  });

  app.post("/v1/completions", async (request, reply) => {
    const context = deps.contextOf(request);
    const engine = deps.readyEngine();
    const body = completionRequestSchema.parse(request.body);
    checkModel(body.model, engine);
    const prompt = completionPrompt(body.prompt);
    const maxTokens = body.max_tokens ?? deps.limits.defaultCompletionMaxTokens;
    if (deps.limits.logPrompts)
      context.prompt = typeof prompt === "string" ? prompt : engine.detokenize(prompt);
    const echoed = body.echo ? (typeof prompt === "string" ? prompt : engine.detokenize(prompt)) : "";
    const run = new GenerationRun(
      engine,
      { prompt, ...samplingOptions(body, maxTokens) },
      context,
      deps.metrics,
    );
    const ids = identity("cmpl", engine);
    context.stream = body.stream === true;

    if (body.stream) {
      const includeUsage = body.stream_options?.include_usage === true;
      const shape: StreamShape = {
        prelude: echoed.length > 0 ? [completionChunk(ids, echoed, null, includeUsage)] : [],
        text: (text) => completionChunk(ids, text, null, includeUsage),
        finish: (reason) => completionChunk(ids, "", reason, includeUsage),
        object: "text_completion",
        includeUsage,
      };
      return sendStream(reply, run, streamEvents(run, shape, ids, context, deps.limits.logPrompts));
    }
    try {
      const result = await run.collect();
      if (deps.limits.logPrompts) context.completion = result.text;
      return completionResponse(
        ids,
        echoed + result.text,
        toOpenAiFinishReason(result.finishReason),
        usageOf(result.promptTokens, result.completionTokens, result.cachedPromptTokens),
      );
    } finally {
      run.close();
    }
  });

  app.post("/v1/chat/completions", async (request, reply) => {
    const context = deps.contextOf(request);
    const engine = deps.readyEngine();
    const body: ChatCompletionRequest = chatCompletionRequestSchema.parse(request.body);
    checkModel(body.model, engine);
    const prompt = await chatPrompt(engine, body);
    if (deps.limits.logPrompts) context.prompt = engine.detokenize(prompt);
    // OpenAI's chat default: as many tokens as the context leaves (at least one, so an overflowing
    // prompt is refused by the engine with the numbers in the message).
    const maxTokens =
      body.max_completion_tokens ??
      body.max_tokens ??
      Math.max(1, engine.info.contextPerSequence - prompt.length);
    const run = new GenerationRun(
      engine,
      { prompt, ...samplingOptions(body, maxTokens) },
      context,
      deps.metrics,
    );
    const ids = identity("chatcmpl", engine);
    context.stream = body.stream === true;

    if (body.stream) {
      const includeUsage = body.stream_options?.include_usage === true;
      const delta = (content: string): ChatDelta => ({ content });
      const shape: StreamShape = {
        prelude: [chatCompletionChunk(ids, { role: "assistant", content: "" }, null, includeUsage)],
        text: (text) => chatCompletionChunk(ids, delta(text), null, includeUsage),
        finish: (reason) => chatCompletionChunk(ids, {}, reason, includeUsage),
        object: "chat.completion.chunk",
        includeUsage,
      };
      return sendStream(reply, run, streamEvents(run, shape, ids, context, deps.limits.logPrompts));
    }
    try {
      const result = await run.collect();
      if (deps.limits.logPrompts) context.completion = result.text;
      return chatCompletionResponse(
        ids,
        result.text,
        toOpenAiFinishReason(result.finishReason),
        usageOf(result.promptTokens, result.completionTokens, result.cachedPromptTokens),
      );
    } finally {
      run.close();
    }
  });
}
