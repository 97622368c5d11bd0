// An in-memory Engine for the server's unit tests of pure HTTP behaviour (validation, errors, SSE
// framing, deadlines, admission): a byte-level "tokenizer" and a scripted continuation, no model.
// Everything about real inference is tested against the llama.cpp engine and the tiny model instead.

import type {
  Engine,
  EngineStats,
  GenerateRequest,
  Generation,
  GenerationChunk,
  GenerationResult,
  ModelInfo,
} from "../../src/engine/types.js";

/** Carries the engine boundary's stable codes, as the real EngineError does. */
export class MemoryEngineError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface MemoryEngineOptions {
  id?: string;
  slots?: number;
  maxQueue?: number;
  contextPerSequence?: number;
  /** Delay between two generated tokens, ms; 0 yields to the event loop only. */
  stepMs?: number;
  /** The continuation, repeated; one byte per token. */
  script?: string;
  chatTemplate?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class MemoryEngine implements Engine {
  readonly info: ModelInfo;
  readonly #slots: number;
  readonly #maxQueue: number;
  readonly #stepMs: number;
  readonly #script: Uint8Array;
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  readonly #batchListeners = new Set<(sequences: number, tokens: number) => void>();
  #closed = false;
  /** Generations that ended because their signal aborted (tests assert the slot was freed). */
  cancelled = 0;
  /** Prompts as the engine received them. */
  readonly prompts: Array<string | number[]> = [];

  constructor(options: MemoryEngineOptions = {}) {
    this.#slots = options.slots ?? 4;
    this.#maxQueue = options.maxQueue ?? 4;
    this.#stepMs = options.stepMs ?? 0;
    this.#script = encoder.encode(options.script ?? " and the quick brown fox jumps over the lazy dog.");
    const contextPerSequence = options.contextPerSequence ?? 256;
    this.info = {
      id: options.id ?? "memory-model",
      architecture: "memory",
      contextSize: contextPerSequence * this.#slots,
      contextPerSequence,
      trainContextSize: contextPerSequence,
      ...(options.chatTemplate === undefined ? {} : { chatTemplate: options.chatTemplate }),
    };
  }

  tokenize(text: string): number[] {
    return [...encoder.encode(text)];
  }

  detokenize(tokens: number[]): string {
    return decoder.decode(Uint8Array.from(tokens));
  }

  stats(): EngineStats {
    return {
      running: this.#running,
      waiting: this.#waiting.length,
      slots: this.#slots,
      maxWaiting: this.#maxQueue,
    };
  }

  onBatch(listener: (sequences: number, tokens: number) => void): () => void {
    this.#batchListeners.add(listener);
    return () => this.#batchListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  generate(request: GenerateRequest): Generation {
    if (this.#closed) throw new MemoryEngineError("BERTH_ENGINE_CLOSED", "the engine is closed");
    const prompt = typeof request.prompt === "string" ? this.tokenize(request.prompt) : request.prompt;
    if (prompt.length === 0)
      throw new MemoryEngineError("BERTH_INVALID_REQUEST", "prompt: must not be empty");
    if (prompt.some((token) => token > 255)) {
      throw new MemoryEngineError("BERTH_INVALID_REQUEST", "prompt: token id out of range");
    }
    if (prompt.length + request.maxTokens > this.info.contextPerSequence) {
      throw new MemoryEngineError(
        "BERTH_CONTEXT_OVERFLOW",
        `prompt (${prompt.length} tokens) + max_tokens (${request.maxTokens}) exceeds the context (${this.info.contextPerSequence} tokens per sequence)`,
      );
    }
    if (this.#running >= this.#slots && this.#waiting.length >= this.#maxQueue) {
      throw new MemoryEngineError("BERTH_OVERLOADED", "the engine is at capacity");
    }
    this.prompts.push(request.prompt);
    let settle!: (result: GenerationResult) => void;
    const result = new Promise<GenerationResult>((resolve) => {
      settle = resolve;
    });
    const iterator = this.#run(request, prompt.length, settle);
    return { result, [Symbol.asyncIterator]: () => iterator };
  }

  async #acquire(signal: AbortSignal | undefined): Promise<boolean> {
    if (this.#running < this.#slots) {
      this.#running++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const onAbort = () => {
        const index = this.#waiting.indexOf(admit);
        if (index >= 0) this.#waiting.splice(index, 1);
        resolve(false);
      };
      const admit = () => {
        signal?.removeEventListener("abort", onAbort);
        this.#running++;
        resolve(true);
      };
      this.#waiting.push(admit);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #release(): void {
    this.#running--;
    this.#waiting.shift()?.();
  }

  async *#run(
    request: GenerateRequest,
    promptTokens: number,
    settle: (result: GenerationResult) => void,
  ): AsyncGenerator<GenerationChunk> {
    const submittedAt = performance.now();
    const summary: GenerationResult = {
      text: "",
      finishReason: "cancelled",
      promptTokens,
      completionTokens: 0,
      cachedPromptTokens: 0,
      timeToFirstToken: 0,
    };
    if (!(await this.#acquire(request.signal))) {
      this.cancelled++;
      settle(summary);
      return;
    }
    const stops = request.stop ?? [];
    let held = "";
    try {
      for (let index = 0; index < request.maxTokens; index++) {
        await new Promise((resolve) =>
          this.#stepMs > 0 ? setTimeout(resolve, this.#stepMs) : setImmediate(resolve),
        );
        if (request.signal?.aborted) {
          this.cancelled++;
          return;
        }
        for (const listener of this.#batchListeners) listener(this.#running, this.#running);
        const token = this.#script[index % this.#script.length]!;
        summary.completionTokens++;
        if (summary.completionTokens === 1)
          summary.timeToFirstToken = (performance.now() - submittedAt) / 1000;
        held += String.fromCharCode(token);
        const stopAt = stops.map((stop) => held.indexOf(stop)).filter((at) => at >= 0);
        if (stopAt.length > 0) {
          const emit = held.slice(0, Math.min(...stopAt));
          summary.text += emit;
          summary.finishReason = "stop";
          if (emit.length > 0) yield { text: emit, tokens: [token] };
          return;
        }
        // Hold back a suffix that could still become a stop sequence.
        let keep = 0;
        for (const stop of stops) {
          for (let length = Math.min(stop.length - 1, held.length); length > keep; length--) {
            if (held.endsWith(stop.slice(0, length))) keep = length;
          }
        }
        const emit = held.slice(0, held.length - keep);
        held = held.slice(held.length - keep);
        summary.text += emit;
        yield { text: emit, tokens: [token] };
      }
      summary.text += held;
      if (held.length > 0) yield { text: held, tokens: [] };
      summary.finishReason = "length";
    } finally {
      this.#release();
      settle(summary);
    }
  }
}
