// The consumer side of one generation: a buffer the driver loop pushes chunks into without ever
// waiting for the consumer, read as an AsyncIterable, plus the promise of the final result.
import type { Generation, GenerationChunk, GenerationResult } from "./types.js";

type Waiter = {
  resolve: (result: IteratorResult<GenerationChunk>) => void;
  reject: (error: unknown) => void;
};

export class GenerationStream implements Generation {
  readonly result: Promise<GenerationResult>;
  private readonly chunks: GenerationChunk[] = [];
  private waiter: Waiter | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;
  private iterated = false;
  private resolveResult!: (result: GenerationResult) => void;
  private rejectResult!: (error: unknown) => void;

  /** `onAbandon` runs when the consumer stops iterating before the end (break, return, throw). */
  constructor(private readonly onAbandon: () => void) {
    this.result = new Promise<GenerationResult>((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    // A consumer that only iterates must not see an unhandled rejection; awaiting `result` still throws.
    this.result.catch(() => undefined);
  }

  get finished(): boolean {
    return this.ended;
  }

  push(chunk: GenerationChunk): void {
    if (this.ended) return;
    if (this.waiter) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve({ value: chunk, done: false });
    } else {
      this.chunks.push(chunk);
    }
  }

  finish(result: GenerationResult): void {
    if (this.ended) return;
    this.ended = true;
    this.resolveResult(result);
    this.settleWaiter();
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = { error };
    this.rejectResult(error);
    this.settleWaiter();
  }

  private settleWaiter(): void {
    if (!this.waiter || this.chunks.length > 0) return;
    const { resolve, reject } = this.waiter;
    this.waiter = undefined;
    if (this.failure) reject(this.failure.error);
    else resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerationChunk> {
    if (this.iterated) throw new Error("a Generation can be iterated only once");
    this.iterated = true;
    return {
      next: () => {
        const chunk = this.chunks.shift();
        if (chunk) return Promise.resolve({ value: chunk, done: false });
        if (this.failure) return Promise.reject(this.failure.error);
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
      return: () => {
        if (!this.ended) this.onAbandon();
        this.chunks.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
