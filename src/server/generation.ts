// One generation as the HTTP side drives it: starts it on the engine, waits for the first chunk
// (so a stream's status can still be an error), times tokens for the metrics, and maps every failure
// to an HttpError, with the abort reason (client gone, deadline, shutdown) taking precedence.

import { performance } from "node:perf_hooks";
import type { Engine, GenerateRequest, GenerationChunk, GenerationResult } from "../engine/types.js";
import { HttpError, toHttpError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";
import type { InferenceContext } from "./request-context.js";

function abortReason(signal: AbortSignal): HttpError {
  return signal.reason instanceof HttpError
    ? signal.reason
    : new HttpError("BERTH_INTERNAL", "generation was cancelled", { cause: signal.reason });
}

/** Races a promise against the signal; used only while waiting in the queue for the first token. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

export class GenerationRun {
  readonly #context: InferenceContext;
  readonly #metrics: ServerMetrics;
  readonly #model: string;
  readonly #iterator: AsyncIterator<GenerationChunk>;
  readonly #result: Promise<GenerationResult>;
  #buffered: IteratorResult<GenerationChunk> | undefined;
  #finished = false;
  #lastTokenAt: number | undefined;
  /** Tokens counted in berth_generated_tokens_total as they streamed, until the result settles the total. */
  #countedTokens = 0;
  #tokensSettled = false;

  /** Starts the generation; engine refusals (overflow, overload, bad tokens) throw as HttpErrors. */
  constructor(
    engine: Engine,
    request: Omit<GenerateRequest, "signal">,
    context: InferenceContext,
    metrics: ServerMetrics,
  ) {
    this.#context = context;
    this.#metrics = metrics;
    this.#model = engine.info.id;
    let generation: ReturnType<Engine["generate"]>;
    try {
      generation = engine.generate({ ...request, signal: context.controller.signal });
    } catch (error) {
      throw toHttpError(error);
    }
    this.#iterator = generation[Symbol.asyncIterator]();
    this.#result = generation.result;
    // Count tokens whatever the outcome: a cancelled generation still spent them.
    this.#result.then(
      (result) => {
        context.promptTokens = result.promptTokens;
        context.completionTokens = result.completionTokens;
        context.cachedPromptTokens = result.cachedPromptTokens;
        context.finishReason = result.finishReason;
        metrics.promptTokens.inc({ model: this.#model }, result.promptTokens);
        // The rest of the tokens: most were counted as they were generated (live rates).
        this.#tokensSettled = true;
        const uncounted = result.completionTokens - this.#countedTokens;
        if (uncounted > 0) metrics.generatedTokens.inc({ model: this.#model }, uncounted);
        metrics.cachedPromptTokens.inc({ model: this.#model }, result.cachedPromptTokens);
      },
      () => {},
    );
  }

  get signal(): AbortSignal {
    return this.#context.controller.signal;
  }

  #fail(error: unknown): HttpError {
    return this.signal.aborted ? abortReason(this.signal) : toHttpError(error);
  }

  /** Waits (in the queue, then the prompt) for the first chunk or the end. */
  async waitForFirstChunk(): Promise<void> {
    try {
      this.#buffered = await untilAborted(this.#iterator.next(), this.signal);
    } catch (error) {
      throw this.#fail(error);
    }
  }

  #observe(chunk: GenerationChunk): void {
    if (chunk.tokens.length === 0) return;
    const now = performance.now();
    const model = this.#model;
    if (!this.#tokensSettled) {
      this.#countedTokens += chunk.tokens.length;
      this.#metrics.generatedTokens.inc({ model }, chunk.tokens.length);
    }
    if (this.#lastTokenAt === undefined) {
      const seconds = (now - this.#context.startedAt) / 1000;
      this.#context.timeToFirstTokenSeconds = seconds;
      this.#metrics.timeToFirstToken.observe({ model }, seconds);
    } else {
      const perToken = (now - this.#lastTokenAt) / 1000 / chunk.tokens.length;
      for (let index = 0; index < chunk.tokens.length; index++) {
        this.#metrics.interTokenLatency.observe({ model }, perToken);
      }
    }
    this.#lastTokenAt = now;
  }

  /** The generated chunks in order; throws an HttpError when the generation fails or is aborted. */
  async *chunks(): AsyncGenerator<GenerationChunk> {
    try {
      let step = this.#buffered ?? (await this.#iterator.next());
      this.#buffered = undefined;
      while (!step.done) {
        this.#observe(step.value);
        yield step.value;
        step = await this.#iterator.next();
      }
      this.#finished = true;
    } catch (error) {
      throw this.#fail(error);
    }
  }

  /** The engine's summary; an aborted or cancelled generation throws the abort's HttpError. */
  async result(): Promise<GenerationResult> {
    let result: GenerationResult;
    try {
      result = await this.#result;
    } catch (error) {
      throw this.#fail(error);
    }
    if (this.signal.aborted) throw abortReason(this.signal);
    if (result.finishReason === "cancelled") {
      throw new HttpError("BERTH_INTERNAL", "the engine cancelled the generation");
    }
    return result;
  }

  /** Runs to the end and returns the summary (non-streaming responses). */
  async collect(): Promise<GenerationResult> {
    for await (const _chunk of this.chunks()) {
      // The text comes from the result; chunks are consumed for timing and to drive the engine.
    }
    return this.result();
  }

  /** Frees the engine's slot if the generation did not run to its end. */
  close(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (!this.signal.aborted) this.#context.controller.abort(new HttpError("BERTH_INTERNAL", "abandoned"));
    this.#iterator.return?.()?.catch(() => {});
  }
}
