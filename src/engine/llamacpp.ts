// The llama.cpp engine on node-llama-cpp 3.21.1: one context whose `parallel` sequences are driven by
// one loop that decodes every live request's next token together, in one full, slot-ordered batch.
//
// How the batch stays full (shared/notes/engine.md has the measurements): node-llama-cpp's own
// per-sequence loops leave one of 8 sequences a step behind in almost every decode, and llama.cpp
// (contexts without unified KV) runs one forward pass only over ascending, consecutive sequence ids.
// So the pool of sequences is created once (ids 0..N-1, never re-created), a request takes the lowest
// free slot, and each step calls next() on every live evaluate() iterator in ascending slot order in
// the same tick and awaits them together: they reach node-llama-cpp's queue together and in order.
// Tokens go to consumers through a buffer (GenerationStream); the loop never waits for a consumer.
import { randomInt } from "node:crypto";
import { basename } from "node:path";
import type {
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaModel,
  SequenceEvaluateOptions,
  Token,
} from "node-llama-cpp";
import type { Logger } from "../util/log.js";
import { type BatchListener, observingInOrderStrategy } from "./batch.js";
import { defaultThreadCount, readCpuBudget } from "./cpu-budget.js";
import { EngineError, engineClosedError, invalidRequestError, overloadedError } from "./errors.js";
import { checkFitsContext, checkPromptTokens, type ResolvedSampling, resolveSampling } from "./request.js";
import { chooseSlot, DEFAULT_MIN_PREFIX_REUSE } from "./slots.js";
import { StopMatcher } from "./stop.js";
import { GenerationStream } from "./stream.js";
import { IncrementalDetokenizer } from "./text.js";
import { ThreadTuner } from "./threads.js";
import type {
  Engine,
  EngineStats,
  FinishReason,
  GenerateRequest,
  Generation,
  ModelInfo,
  TokenizeOptions,
} from "./types.js";

export interface LlamaEngineOptions {
  modelPath: string;
  /** Id served in /v1/models; default: the file name without ".gguf". */
  modelId?: string;
  /** Sequences decoded together (slots); default 8. */
  parallel?: number;
  /** Tokens one request can use (prompt + max_tokens); default min(training context, 1024). */
  contextPerSequence?: number;
  /**
   * The most CPU threads for decoding; default: the CPUs this process may use (src/engine/cpu-budget.ts).
   * With `adaptiveThreads` the engine decodes with fewer while fewer are faster (src/engine/threads.ts).
   */
  threads?: number;
  /**
   * Measure decode steps and use the fastest thread count up to `threads`. Default true, unless the
   * environment has BERTH_ADAPTIVE_THREADS=0 (then exactly `threads`, as before).
   */
  adaptiveThreads?: boolean;
  /** Requests admitted while every slot is busy; one more is refused (BERTH_OVERLOADED). Default 4×parallel. */
  maxQueue?: number;
  /**
   * Prompt tokens evaluated per step while other sequences are generating (chunked prefill): a long
   * prompt joining mid-run then delays the running sequences by one chunk per step, not its whole
   * length. Default 128. When nothing is generating, a step evaluates up to the batch size.
   */
  prefillChunk?: number;
  /** A slot is chosen for its cached prefix only when that prefix is at least this long (slots.ts). Default 16. */
  minPrefixReuse?: number;
  /** False: every request is evaluated from scratch (bench:multiturn's baseline). Default true. */
  prefixReuse?: boolean;
  /** CPU only by default (the supported target); "auto" lets node-llama-cpp pick a GPU backend. */
  gpu?: false | "auto";
  logger?: Logger;
  /** Told when each loading phase ends (engine-import, engine-binary, model-load, context): cold-start timing. */
  onStartupPhase?: (phase: string) => void;
}

const DEFAULT_PARALLEL = 8;
const DEFAULT_CONTEXT_PER_SEQUENCE = 1024;
const DEFAULT_PREFILL_CHUNK = 128;
const DEFAULT_BATCH_SIZE = 512;
/** Presence/frequency penalties look at this many recent tokens (prompt + completion), as llama.cpp's default. */
const PENALTY_WINDOW = 64;

// The native llama.cpp backend is process-wide: node-llama-cpp frees it for good when a Llama is
// disposed, so one Llama per GPU setting is shared by every engine of the process and never disposed
// (node-llama-cpp releases it at exit). Its llama.cpp log lines go to the loggers of live engines.
const sharedLlamas = new Map<string, Promise<Llama>>();

/**
 * The build scripts/build-engine.sh makes: node-llama-cpp's prebuilt build (every x86 CPU variant,
 * chosen at run time) plus OpenMP. Opt-in with `BERTH_ENGINE_BUILD=openmp`: measured on a 2-core
 * AMX host (bench/README.md, "Throughput"), the prebuilt binary with the adaptive thread count was
 * faster quiet (1.3×) and beside a noisy neighbour (1.3-1.8×), since OpenMP's worker threads crash in
 * the AMX kernels there and the build must drop them. These options name the folder node-llama-cpp
 * looks in; when it holds no build, the prebuilt binary loads.
 */
export const OPENMP_BUILD_OPTIONS: Readonly<Record<string, string>> = {
  GGML_NATIVE: "OFF",
  GGML_CPU_ALL_VARIANTS: "ON",
  GGML_BACKEND_DL: "ON",
  GGML_OPENMP: "ON",
};
const llamaLogSinks = new Set<Logger>();

/**
 * The process's Llama for a GPU setting, loaded on first call: importing node-llama-cpp and loading its
 * binary (which it first tests in a forked process) is most of a cold start, so `berth serve` starts
 * it early (preloadLlamaEngine) while it checks the model and builds the HTTP app.
 */
async function sharedLlama(gpu: false | "auto", onPhase?: (phase: string) => void): Promise<Llama> {
  const key = String(gpu);
  let llama = sharedLlamas.get(key);
  if (!llama) {
    llama = (async () => {
      const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
      onPhase?.("engine-import");
      return getLlama({
        gpu,
        // maxThreads 0: each context uses exactly the threads it is given (see createLlamaEngine).
        maxThreads: 0,
        // Compiling llama.cpp on a server is never wanted: the prebuilt binary serves, or with
        // BERTH_ENGINE_BUILD=openmp the build scripts/build-engine.sh made ahead of time.
        build: "never",
        ...(process.env.BERTH_ENGINE_BUILD === "openmp" ? { cmakeOptions: { ...OPENMP_BUILD_OPTIONS } } : {}),
        logLevel: LlamaLogLevel.warn,
        logger: (level, message) => {
          const line = message.trim();
          if (line.length === 0) return;
          for (const logger of llamaLogSinks) logger.warn({ llamaLevel: level }, `llama.cpp: ${line}`);
        },
      });
    })();
    sharedLlamas.set(key, llama);
    llama.catch(() => sharedLlamas.delete(key));
  }
  return llama;
}

/**
 * Starts loading the engine's native binary now, without waiting; errors surface in createLlamaEngine.
 * `onPhase` hears engine-import when this call is the one that starts the load.
 */
export function preloadLlamaEngine(gpu: false | "auto" = false, onPhase?: (phase: string) => void): void {
  sharedLlama(gpu, onPhase).catch(() => {});
}

export async function createLlamaEngine(options: LlamaEngineOptions): Promise<Engine> {
  const parallel = options.parallel ?? DEFAULT_PARALLEL;
  if (!Number.isInteger(parallel) || parallel < 1)
    throw new Error(`parallel must be a positive integer, got ${parallel}`);
  const onPhase = options.onStartupPhase;
  const llama = await sharedLlama(options.gpu ?? false, onPhase);
  onPhase?.("engine-binary");
  // Memory-mapped weights (the default where supported, said here on purpose): replicas of one model
  // on a node share the file's pages in the page cache instead of each holding a private copy.
  const model = await llama.loadModel({ modelPath: options.modelPath, useMmap: llama.supportsMmap });
  onPhase?.("model-load");
  try {
    const trainContextSize = model.trainContextSize;
    const contextPerSequence =
      options.contextPerSequence ?? Math.min(trainContextSize, DEFAULT_CONTEXT_PER_SEQUENCE);
    // GPT-2 has learned position embeddings: positions past the training context do not exist.
    if (
      !Number.isInteger(contextPerSequence) ||
      contextPerSequence < 2 ||
      contextPerSequence > trainContextSize
    ) {
      throw new Error(
        `contextPerSequence must be an integer in 2..${trainContextSize} (the training context)`,
      );
    }
    // Threads = the CPUs this process may really use (cores, affinity, cgroup quota): node-llama-cpp's
    // default, max(cores, 4), oversubscribes 2 cores (0.8 tok/s), and threads beyond a quota only spin.
    const threads = options.threads ?? defaultThreadCount(await readCpuBudget(llama.cpuMathCores));
    const prefillChunk = options.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
    const batchSize = Math.max(DEFAULT_BATCH_SIZE, parallel + prefillChunk);
    const batchListeners = new Set<BatchListener>();
    const context = await model.createContext({
      contextSize: contextPerSequence,
      sequences: parallel,
      threads,
      batchSize,
      failedCreationRemedy: false,
      batching: {
        itemPrioritizationStrategy: observingInOrderStrategy((sequences, tokens) => {
          for (const listener of batchListeners) listener(sequences, tokens);
        }),
      },
    });
    // Created once, in order, so slot i is llama.cpp sequence id i for the engine's whole life.
    const sequences: LlamaContextSequence[] = [];
    for (let index = 0; index < parallel; index++) sequences.push(context.getSequence());
    onPhase?.("context");
    return new LlamaEngine({
      model,
      context,
      sequences,
      batchListeners,
      batchSize,
      prefillChunk,
      contextPerSequence: Math.min(contextPerSequence, context.contextSize),
      maxQueue: options.maxQueue ?? 4 * parallel,
      tuner:
        (options.adaptiveThreads ?? process.env.BERTH_ADAPTIVE_THREADS !== "0")
          ? new ThreadTuner({ maxThreads: threads })
          : undefined,
      minPrefixReuse: options.minPrefixReuse ?? DEFAULT_MIN_PREFIX_REUSE,
      prefixReuse: options.prefixReuse ?? true,
      info: {
        id: options.modelId ?? basename(options.modelPath).replace(/\.gguf$/i, ""),
        architecture: String(model.fileInfo.metadata.general.architecture),
        contextSize: contextPerSequence * parallel,
        contextPerSequence,
        trainContextSize,
        chatTemplate: chatTemplateOf(model),
        engineBuild: llama.buildType === "localBuild" ? "openmp" : "prebuilt",
      },
      logger: options.logger,
    });
  } catch (error) {
    await model.dispose();
    throw error;
  }
}

function chatTemplateOf(model: LlamaModel): string | undefined {
  const tokenizer = model.fileInfo.metadata.tokenizer as { chat_template?: unknown } | undefined;
  return typeof tokenizer?.chat_template === "string" ? tokenizer.chat_template : undefined;
}

interface Slot {
  readonly index: number;
  readonly sequence: LlamaContextSequence;
  job: Job | undefined;
  /** The engine's admission count when the slot last took a request; 0 = never (least-recently-used choice). */
  lastUsed: number;
}

interface Job {
  readonly prompt: Token[];
  readonly sampling: ResolvedSampling;
  readonly stream: GenerationStream;
  readonly submittedAt: number;
  readonly detokenizer: IncrementalDetokenizer;
  readonly stopMatcher: StopMatcher;
  readonly generated: Token[];
  slot: Slot | undefined;
  /** Prompt tokens already in the slot's KV cache (reused + evaluated). */
  prefilled: number;
  cachedPromptTokens: number;
  iterator: TokenIterator | undefined;
  text: string;
  /** Tokens generated since the last chunk was pushed (a chunk carries the tokens behind its text). */
  unreported: number[];
  firstTokenAt: number | undefined;
  cancelRequested: boolean;
  detachSignal: () => void;
}

/** What LlamaContextSequence.evaluate() returns (its next() takes an optional replacement token). */
type TokenIterator = ReturnType<LlamaContextSequence["evaluate"]>;

type StepWork = { job: Job; kind: "prefill" | "token"; promise: Promise<unknown> };

interface LlamaEngineParts {
  model: LlamaModel;
  context: LlamaContext;
  sequences: LlamaContextSequence[];
  batchListeners: Set<BatchListener>;
  batchSize: number;
  prefillChunk: number;
  contextPerSequence: number;
  maxQueue: number;
  minPrefixReuse: number;
  prefixReuse: boolean;
  tuner: ThreadTuner | undefined;
  info: ModelInfo;
  logger: Logger | undefined;
}

class LlamaEngine implements Engine {
  readonly info: ModelInfo;
  private readonly model: LlamaModel;
  private readonly context: LlamaContext;
  private readonly slots: Slot[];
  private readonly waiting: Job[] = [];
  private admissions = 0;
  private readonly batchListeners: Set<BatchListener>;
  private readonly vocabularySize: number;
  private closing = false;
  private closed: Promise<void> | undefined;
  private woken = false;
  private wake: (() => void) | undefined;
  private readonly loop: Promise<void>;

  constructor(private readonly parts: LlamaEngineParts) {
    this.info = parts.info;
    this.model = parts.model;
    this.context = parts.context;
    this.batchListeners = parts.batchListeners;
    this.slots = parts.sequences.map((sequence, index) => ({ index, sequence, job: undefined, lastUsed: 0 }));
    this.vocabularySize = vocabularySizeOf(parts.model);
    if (parts.logger) llamaLogSinks.add(parts.logger);
    this.loop = this.drive();
  }

  tokenize(text: string, options: TokenizeOptions = {}): number[] {
    const tokens = this.model.tokenize(text, options.special ?? false);
    // node-llama-cpp never adds BOS itself; models whose tokenizer asks for it get it here (GPT-2 does not).
    const bos = this.model.tokens.bos;
    if (this.model.tokens.shouldPrependBosToken && bos !== null && tokens[0] !== bos) tokens.unshift(bos);
    return tokens;
  }

  detokenize(tokens: readonly number[]): string {
    return this.model.detokenize(tokens as readonly Token[], false);
  }

  stats(): EngineStats {
    return {
      running: this.slots.filter((slot) => slot.job !== undefined).length,
      waiting: this.waiting.length,
      slots: this.slots.length,
      maxWaiting: this.parts.maxQueue,
    };
  }

  onBatch(listener: BatchListener): () => void {
    this.batchListeners.add(listener);
    return () => this.batchListeners.delete(listener);
  }

  generate(request: GenerateRequest): Generation {
    if (this.closing) throw engineClosedError();
    const sampling = resolveSampling(request, () => randomInt(2 ** 32));
    let prompt: Token[];
    if (typeof request.prompt === "string") {
      prompt = this.tokenize(request.prompt) as Token[];
    } else if (Array.isArray(request.prompt)) {
      prompt = [...request.prompt] as Token[];
    } else {
      throw invalidRequestError("prompt", "must be a string or a list of token ids");
    }
    checkPromptTokens(prompt, this.vocabularySize);
    checkFitsContext(prompt.length, sampling.maxTokens, this.parts.contextPerSequence);
    // Waiting jobs fill the free slots at the next step; only the rest really wait.
    const freeSlots = this.slots.filter((slot) => slot.job === undefined).length;
    if (this.waiting.length - freeSlots >= this.parts.maxQueue) {
      throw overloadedError(this.waiting.length, this.slots.length);
    }

    const job: Job = {
      prompt,
      sampling,
      stream: new GenerationStream(() => this.cancel(job)),
      submittedAt: performance.now(),
      detokenizer: new IncrementalDetokenizer((tokens, previous) =>
        this.model.detokenize(tokens as Token[], false, previous as Token[]),
      ),
      stopMatcher: new StopMatcher(sampling.stop),
      generated: [],
      slot: undefined,
      prefilled: 0,
      cachedPromptTokens: 0,
      iterator: undefined,
      text: "",
      unreported: [],
      firstTokenAt: undefined,
      cancelRequested: false,
      detachSignal: () => undefined,
    };
    const signal = request.signal;
    if (signal?.aborted) {
      this.finish(job, "cancelled");
      return job.stream;
    }
    if (signal) {
      const onAbort = () => this.cancel(job);
      signal.addEventListener("abort", onAbort, { once: true });
      job.detachSignal = () => signal.removeEventListener("abort", onAbort);
    }
    this.waiting.push(job);
    this.poke();
    return job.stream;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closing = true;
      this.poke();
      this.closed = (async () => {
        await this.loop;
        await this.context.dispose();
        await this.model.dispose();
        if (this.parts.logger) llamaLogSinks.delete(this.parts.logger);
      })();
    }
    return this.closed;
  }

  // Cancellation takes effect between steps: a waiting job ends now, a running one at the loop's next turn.
  private cancel(job: Job): void {
    if (job.stream.finished || job.cancelRequested) return;
    job.cancelRequested = true;
    const waitingAt = this.waiting.indexOf(job);
    if (waitingAt !== -1) {
      this.waiting.splice(waitingAt, 1);
      this.finish(job, "cancelled");
      return;
    }
    this.poke();
  }

  private poke(): void {
    this.woken = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async sleep(): Promise<void> {
    if (this.woken) return;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  /** The one driver loop: everything that touches the sequences runs here, between decode steps. */
  private async drive(): Promise<void> {
    try {
      for (;;) {
        this.woken = false;
        if (this.closing) {
          await this.endAll(engineClosedError());
          return;
        }
        await this.retireCancelled();
        await this.admit();
        const busy = this.slots.filter((slot) => slot.job !== undefined);
        if (busy.length === 0) {
          await this.sleep();
          continue;
        }
        await this.step(busy);
      }
    } catch (error) {
      // A bug or a broken context: fail everything rather than hang; the engine cannot continue.
      this.parts.logger?.error({ err: error }, "engine loop failed");
      this.closing = true;
      await this.endAll(new EngineError("BERTH_ENGINE_FAILED", "the engine failed", { cause: error })).catch(
        () => undefined,
      );
    }
  }

  private async retireCancelled(): Promise<void> {
    const releases: Promise<unknown>[] = [];
    for (const slot of this.slots) {
      if (slot.job?.cancelRequested) releases.push(this.finish(slot.job, "cancelled"));
    }
    await Promise.all(releases);
  }

  /** Moves waiting jobs into free slots, reusing each slot's cached prompt prefix where it matches. */
  private async admit(): Promise<void> {
    while (this.waiting.length > 0) {
      const free = this.slots.filter((slot) => slot.job === undefined);
      if (free.length === 0) return;
      const job = this.waiting.shift()!;
      const choice = chooseSlot(
        free.map((slot) => ({
          index: slot.index,
          tokens: this.parts.prefixReuse ? slot.sequence.contextTokens : [],
          lastUsed: slot.lastUsed,
        })),
        job.prompt,
        this.parts.minPrefixReuse,
      )!;
      const slot = this.slots[choice.index]!;
      slot.job = job;
      slot.lastUsed = ++this.admissions;
      job.slot = slot;
      job.prefilled = choice.reusedTokens;
      job.cachedPromptTokens = choice.reusedTokens;
      const sequence = slot.sequence;
      if (choice.reusedTokens < sequence.nextTokenIndex) {
        try {
          await sequence.eraseContextTokenRanges([
            { start: choice.reusedTokens, end: sequence.nextTokenIndex },
          ]);
        } catch (error) {
          await this.fail(job, error);
        }
      }
    }
  }

  /**
   * One decode step: the next token of every generating slot, plus prompt chunks of joining ones,
   * all started in ascending slot order in one tick, so node-llama-cpp decodes them as one batch.
   */
  private async step(busy: Slot[]): Promise<void> {
    const generating = busy.filter((slot) => slot.job?.iterator !== undefined).length;
    let prefillBudget = generating > 0 ? this.parts.prefillChunk : this.parts.batchSize - generating;
    const tuner = this.parts.tuner;
    if (tuner) setContextThreads(this.context, tuner.threads);
    // Only steps that decode one token per sequence are timed for the tuner: prompt chunks vary.
    let decodeOnly = true;
    const startedAt = performance.now();
    const cpuAtStart = tuner ? process.cpuUsage() : undefined;
    const work: StepWork[] = [];
    for (const slot of busy) {
      const job = slot.job!;
      if (job.iterator) {
        work.push({ job, kind: "token", promise: job.iterator.next() });
        continue;
      }
      const remaining = job.prompt.length - job.prefilled;
      if (prefillBudget <= 0) continue;
      if (remaining <= prefillBudget) {
        // The last prompt chunk goes through evaluate(): its logits give the first new token.
        if (remaining > 1) decodeOnly = false;
        job.iterator = slot.sequence.evaluate(job.prompt.slice(job.prefilled), this.evaluateOptions(job));
        job.prefilled = job.prompt.length;
        prefillBudget -= remaining;
        work.push({ job, kind: "token", promise: job.iterator.next() });
      } else {
        const chunk = job.prompt.slice(job.prefilled, job.prefilled + prefillBudget);
        prefillBudget = 0;
        decodeOnly = false;
        const promise = slot.sequence.evaluateWithoutGeneratingNewTokens(chunk).then(() => {
          job.prefilled += chunk.length;
        });
        work.push({ job, kind: "prefill", promise });
      }
    }
    const outcomes = await Promise.allSettled(work.map((item) => item.promise));
    if (tuner && decodeOnly && work.length > 0) {
      const before = tuner.settledThreads;
      const cpu = process.cpuUsage(cpuAtStart);
      tuner.record(performance.now() - startedAt, work.length, (cpu.user + cpu.system) / 1000);
      if (tuner.settledThreads !== before)
        this.parts.logger?.info({ threads: tuner.settledThreads, was: before }, "decode threads changed");
    }
    const releases: Promise<unknown>[] = [];
    outcomes.forEach((outcome, index) => {
      const { job, kind } = work[index]!;
      if (outcome.status === "rejected") {
        releases.push(this.fail(job, outcome.reason));
      } else if (kind === "token") {
        const result = outcome.value as IteratorResult<Token, void>;
        const release = result.done ? this.finish(job, "stop") : this.acceptToken(job, result.value);
        if (release) releases.push(release);
      }
    });
    await Promise.all(releases);
  }

  private evaluateOptions(job: Job): SequenceEvaluateOptions {
    const { sampling } = job;
    const penalize = sampling.presencePenalty !== 0 || sampling.frequencyPenalty !== 0;
    return {
      temperature: sampling.temperature,
      topP: sampling.topP,
      // top_k off must leave the top-k sampler out: node-llama-cpp turns 0 into k = vocabulary size,
      // a full sort of 50257 candidates per token, and turns undefined into 40. A null field is
      // dropped before it reaches llama.cpp (removeNullFields), so no top-k stage is built.
      topK: sampling.topK > 0 ? sampling.topK : (null as unknown as number),
      minP: 0,
      seed: sampling.seed,
      // End-of-generation tokens come back to the engine, which stops on them or, with ignoreEos,
      // keeps going (node-llama-cpp's TokenBias refuses to ban EOS/EOT, so they cannot be masked out).
      yieldEogToken: true,
      repeatPenalty: penalize
        ? {
            punishTokens: () => penaltyWindow(job),
            maxPunishTokens: PENALTY_WINDOW,
            penalty: 1,
            presencePenalty: sampling.presencePenalty,
            frequencyPenalty: sampling.frequencyPenalty,
          }
        : undefined,
    };
  }

  /** Handles one sampled token; returns a promise when the job ended (its slot is being released). */
  private acceptToken(job: Job, token: Token): Promise<unknown> | undefined {
    job.firstTokenAt ??= performance.now();
    if (!job.sampling.ignoreEos && this.model.isEogToken(token)) return this.finish(job, "stop");
    job.generated.push(token);
    job.unreported.push(token);
    const text = job.detokenizer.push(token);
    if (text.length > 0) {
      const { emit, stopped } = job.stopMatcher.push(text);
      this.emit(job, emit);
      if (stopped) return this.finish(job, "stop");
    }
    if (job.generated.length >= job.sampling.maxTokens) return this.finish(job, "length");
    return undefined;
  }

  private emit(job: Job, text: string): void {
    if (text.length === 0) return;
    job.text += text;
    job.stream.push({ text, tokens: job.unreported });
    job.unreported = [];
  }

  /**
   * Ends a job: releases text still held (unless cancelled), resolves its result, frees its slot at
   * once and returns the promise of closing its evaluate() iterator, which the loop awaits before
   * the slot's sequence is used again.
   */
  private finish(job: Job, reason: FinishReason): Promise<unknown> {
    let finishReason = reason;
    if (reason !== "cancelled") {
      const { emit, stopped } = job.stopMatcher.push(job.detokenizer.flush());
      this.emit(job, emit);
      if (stopped) finishReason = "stop";
      else this.emit(job, job.stopMatcher.flush());
    }
    job.stream.finish({
      text: job.text,
      finishReason,
      promptTokens: job.prompt.length,
      completionTokens: job.generated.length,
      cachedPromptTokens: job.cachedPromptTokens,
      timeToFirstToken: job.firstTokenAt === undefined ? 0 : (job.firstTokenAt - job.submittedAt) / 1000,
    });
    return this.release(job);
  }

  private fail(job: Job, cause: unknown): Promise<unknown> {
    const error =
      cause instanceof EngineError
        ? cause
        : new EngineError("BERTH_ENGINE_FAILED", "llama.cpp failed to evaluate the request", { cause });
    if (!(cause instanceof EngineError)) this.parts.logger?.error({ err: cause }, "generation failed");
    job.stream.fail(error);
    const slot = job.slot;
    const release = this.release(job);
    // After a failed decode the slot's cache may not match its token list: start it empty.
    return slot ? release.then(() => slot.sequence.clearHistory()).catch(() => undefined) : release;
  }

  private release(job: Job): Promise<unknown> {
    job.detachSignal();
    const slot = job.slot;
    if (slot && slot.job === job) slot.job = undefined;
    const iterator = job.iterator;
    job.iterator = undefined;
    return iterator ? iterator.return().catch(() => undefined) : Promise.resolve();
  }

  private async endAll(error: EngineError): Promise<void> {
    for (const job of this.waiting.splice(0)) {
      job.detachSignal();
      job.stream.fail(error);
    }
    const releases: Promise<unknown>[] = [];
    for (const slot of this.slots) {
      const job = slot.job;
      if (!job) continue;
      job.stream.fail(error);
      releases.push(this.release(job));
    }
    await Promise.all(releases);
  }
}

/** node-llama-cpp 3.21.1's own fields for a context's thread count (it has no public setter). */
interface ContextThreadInternals {
  _idealThreads: number;
  _freeReservedThreads(): void;
}

/**
 * Sets the threads a context decodes with from its next decode on; call only between decodes.
 * node-llama-cpp reserves a context's threads when a decode is dispatched (`_reserveThreads`, from
 * `_idealThreads`) and keeps the reservation until its queue drains; freeing it makes the next
 * dispatch reserve the new count, which it passes to llama_set_n_threads. Exported for its test,
 * which fails if a node-llama-cpp upgrade changes these fields.
 */
export function setContextThreads(context: LlamaContext, threads: number): void {
  const internals = context as unknown as ContextThreadInternals;
  if (internals._idealThreads === threads) return;
  internals._idealThreads = threads;
  internals._freeReservedThreads();
}

function penaltyWindow(job: Job): Token[] {
  const { generated, prompt } = job;
  if (generated.length >= PENALTY_WINDOW) return generated.slice(-PENALTY_WINDOW);
  return [...prompt.slice(-(PENALTY_WINDOW - generated.length)), ...generated];
}

function vocabularySizeOf(model: LlamaModel): number {
  const tokens = (model.fileInfo.metadata.tokenizer as { ggml?: { tokens?: unknown } } | undefined)?.ggml
    ?.tokens;
  if (Array.isArray(tokens) && tokens.length > 0) return tokens.length;
  let count = 0;
  for (const _token of model.iterateAllTokens()) count++;
  return count;
}
