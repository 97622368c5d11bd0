// The engine boundary's error catalogue: every way generate() can refuse or fail, with a stable code.
// The HTTP layer maps these codes onto statuses (src/server/errors.ts); callers match on `code`, never on text.

export type EngineErrorCode =
  /** prompt + max_tokens does not fit one sequence's context. */
  | "BERTH_CONTEXT_OVERFLOW"
  /** The admission queue is full: every slot is busy and `maxQueue` requests already wait. */
  | "BERTH_OVERLOADED"
  /** The engine is closing or closed; nothing new is admitted and in-flight work is ended. */
  | "BERTH_ENGINE_CLOSED"
  /** A request field is out of range or malformed (empty prompt, unknown token id, top_p 0, ...). */
  | "BERTH_INVALID_REQUEST"
  /** llama.cpp failed while decoding or sampling; the request is ended and its slot reset. */
  | "BERTH_ENGINE_FAILED";

export interface EngineErrorOptions {
  /** The request field at fault, named as in the OpenAI API ("max_tokens", "top_p"), when there is one. */
  param?: string;
  /** Machine-readable numbers behind the message (e.g. promptTokens, maxTokens, contextPerSequence). */
  details?: Record<string, number>;
  cause?: unknown;
}

export class EngineError extends Error {
  readonly param: string | undefined;
  readonly details: Record<string, number> | undefined;

  constructor(
    readonly code: EngineErrorCode,
    message: string,
    options: EngineErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EngineError";
    this.param = options.param;
    this.details = options.details;
  }
}

export function isEngineError(error: unknown): error is EngineError {
  return error instanceof EngineError;
}

export function contextOverflowError(
  promptTokens: number,
  maxTokens: number,
  contextPerSequence: number,
): EngineError {
  return new EngineError(
    "BERTH_CONTEXT_OVERFLOW",
    `prompt (${promptTokens} tokens) + max_tokens (${maxTokens}) exceeds the context (${contextPerSequence} tokens per sequence)`,
    { details: { promptTokens, maxTokens, contextPerSequence } },
  );
}

export function overloadedError(waiting: number, slots: number): EngineError {
  return new EngineError(
    "BERTH_OVERLOADED",
    `the engine is at capacity: all ${slots} slots are busy and ${waiting} requests are waiting`,
    { details: { waiting, slots } },
  );
}

export function engineClosedError(): EngineError {
  return new EngineError("BERTH_ENGINE_CLOSED", "the engine is closed");
}

export function invalidRequestError(param: string, message: string): EngineError {
  return new EngineError("BERTH_INVALID_REQUEST", `${param}: ${message}`, { param });
}
