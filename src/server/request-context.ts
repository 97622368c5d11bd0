// What the server knows about one inference request while it runs: its abort controller (client
// gone, deadline, shutdown), its outcome and token counts, for the one log line and the metrics at the end.

import type { FinishReason } from "../engine/types.js";
import type { HttpError } from "./errors.js";

export interface InferenceContext {
  /** Route pattern, e.g. "/v1/completions" (a metrics label). */
  readonly route: string;
  /** performance.now() at arrival, ms. */
  readonly startedAt: number;
  /** Aborted with an HttpError as reason: client closed (499), deadline (504) or shutdown (503). */
  readonly controller: AbortController;
  readonly deadlineMs: number;
  /** Set when the request ends in an error, even after a stream's headers went out. */
  outcome?: HttpError;
  stream?: boolean;
  promptTokens?: number;
  completionTokens?: number;
  cachedPromptTokens?: number;
  finishReason?: FinishReason;
  timeToFirstTokenSeconds?: number;
  /** Only kept when the server logs prompts (--log-prompts). */
  prompt?: string;
  completion?: string;
}

/** Accepts a caller's x-request-id when it is a sane token; otherwise the server makes one. */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:/+=-]{1,128}$/;

export function requestIdFrom(header: string | string[] | undefined, generate: () => string): string {
  const candidate = Array.isArray(header) ? header[0] : header;
  return candidate !== undefined && REQUEST_ID_PATTERN.test(candidate) ? candidate : generate();
}
