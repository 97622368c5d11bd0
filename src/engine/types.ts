// The Engine interface: what the model server needs from an inference engine.
// The llama.cpp implementation lives in llamacpp.ts; the server depends only on this file.

export interface SamplingOptions {
  /** New tokens to generate at most. */
  maxTokens: number;
  /** 0 = greedy; default 1 (as OpenAI). Range 0..2. */
  temperature?: number;
  /** Nucleus sampling, (0, 1]; default 1 (off). */
  topP?: number;
  /** 0 = off (default). */
  topK?: number;
  /** Fixed seed → reproducible sampling; default a random seed per request. */
  seed?: number;
  /** Generation stops before any of these strings; they are not part of the output. */
  stop?: string[];
  /** OpenAI semantics, -2..2, over the last 64 tokens (prompt + completion) as llama.cpp does. */
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Keep generating past end-of-sequence (benchmarks). */
  ignoreEos?: boolean;
}

export interface GenerateRequest extends SamplingOptions {
  /** Either text (tokenized by the engine as tokenize(text) does) or tokens. */
  prompt: string | number[];
  /**
   * Cancels the generation between two decode steps and frees its slot (finishReason "cancelled").
   * Leaving the Generation's iteration early (break/return) cancels it the same way.
   */
  signal?: AbortSignal;
}

export type FinishReason = "stop" | "length" | "cancelled";

export interface GenerationChunk {
  /** Text of the new token(s); may be "" while a multi-byte character is incomplete. */
  text: string;
  tokens: number[];
}

export interface GenerationResult {
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens whose KV cache was reused from an earlier request in the same slot. */
  cachedPromptTokens: number;
  /** Seconds from submit to first generated token; 0 when none was generated. */
  timeToFirstToken: number;
}

/** A running generation: iterate for streamed chunks, await `result` for the summary. */
export interface Generation extends AsyncIterable<GenerationChunk> {
  readonly result: Promise<GenerationResult>;
}

export interface EngineStats {
  /** Sequences generating now. */
  running: number;
  /** Admitted requests waiting for a free slot. */
  waiting: number;
  slots: number;
  /** Waiting requests allowed beyond the slots; one more gets BERTH_OVERLOADED. */
  maxWaiting: number;
}

export interface TokenizeOptions {
  /** Parse special-token text such as "<|endoftext|>" into those tokens (default false: user text stays text). */
  special?: boolean;
}

export interface ModelInfo {
  /** Model id as served (/v1/models). */
  id: string;
  architecture: string;
  /** Total KV-cache cells of the context: contextPerSequence × slots. */
  contextSize: number;
  /** Per-sequence context (tokens) a single request can use. */
  contextPerSequence: number;
  chatTemplate?: string;
  trainContextSize: number;
  /** The engine binary serving it: scripts/build-engine.sh's OpenMP build, or node-llama-cpp's prebuilt. */
  engineBuild?: "openmp" | "prebuilt";
}

export interface Engine {
  readonly info: ModelInfo;
  /** The tokens generate() would use for this text prompt (with BOS when the model's tokenizer asks for it). */
  tokenize(text: string, options?: TokenizeOptions): number[];
  detokenize(tokens: readonly number[]): string;
  /** Starts a generation; throws an EngineError (BERTH_CONTEXT_OVERFLOW, ...) before scheduling. */
  generate(request: GenerateRequest): Generation;
  stats(): EngineStats;
  /** Observers of each decode call's batch size (sequences decoded together), for metrics. */
  onBatch(listener: (sequences: number, tokens: number) => void): () => void;
  close(): Promise<void>;
}
