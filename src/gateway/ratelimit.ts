// Per-identity rate limits (requests and tokens per minute) as token buckets: a request reserves
// its estimated tokens on admission, and the estimate is settled against the response's usage.
// Pure arithmetic; the clock comes in.

export interface Bucket {
  /** Tokens available (may go negative after a response used more than was reserved). */
  available: number;
  updatedAt: number;
}

/** Bucket `capacity`, refilled at capacity per minute, advanced to `now`. */
export function refill(bucket: Bucket, capacity: number, now: number): Bucket {
  if (now <= bucket.updatedAt) return bucket;
  const available = Math.min(capacity, bucket.available + ((now - bucket.updatedAt) * capacity) / 60_000);
  return { available, updatedAt: now };
}

/** How long until `amount` tokens are available (0 if they are). */
export function waitFor(bucket: Bucket, capacity: number, amount: number): number {
  const needed = Math.min(amount, capacity) - bucket.available;
  return needed <= 0 ? 0 : Math.ceil((needed * 60_000) / capacity);
}

export interface RateLimits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

export type Admission =
  | { admitted: true; reservedTokens: number }
  | { admitted: false; limit: "requests" | "tokens"; retryAfterMs: number };

interface IdentityBuckets {
  /** The limits the buckets were last used with (sweeping needs each identity's own capacity). */
  limits: RateLimits;
  requests?: Bucket;
  tokens?: Bucket;
}

/** Buckets per identity (`model` + key name, or client IP when auth is off). */
export class RateLimiter {
  private readonly buckets = new Map<string, IdentityBuckets>();
  private admissionsSinceSweep = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Admits one request reserving `estimatedTokens`, or says which limit refused it and when to retry.
   * A token reservation larger than the bucket only needs a full bucket, so big requests are not
   * refused forever.
   */
  admit(identity: string, limits: RateLimits, estimatedTokens: number): Admission {
    const { requestsPerMinute, tokensPerMinute } = limits;
    if (requestsPerMinute === undefined && tokensPerMinute === undefined) {
      return { admitted: true, reservedTokens: 0 };
    }
    const now = this.now();
    this.maybeSweep(now);
    const state = this.buckets.get(identity);
    const requests =
      requestsPerMinute === undefined
        ? undefined
        : refill(state?.requests ?? { available: requestsPerMinute, updatedAt: now }, requestsPerMinute, now);
    const tokens =
      tokensPerMinute === undefined
        ? undefined
        : refill(state?.tokens ?? { available: tokensPerMinute, updatedAt: now }, tokensPerMinute, now);
    if (requests && requestsPerMinute !== undefined) {
      const wait = waitFor(requests, requestsPerMinute, 1);
      if (wait > 0) {
        this.buckets.set(identity, { limits, requests, ...(tokens ? { tokens } : {}) });
        return { admitted: false, limit: "requests", retryAfterMs: wait };
      }
    }
    const reservedTokens = tokensPerMinute === undefined ? 0 : Math.max(1, Math.ceil(estimatedTokens));
    if (tokens && tokensPerMinute !== undefined) {
      const wait = waitFor(tokens, tokensPerMinute, reservedTokens);
      if (wait > 0) {
        this.buckets.set(identity, { limits, ...(requests ? { requests } : {}), tokens });
        return { admitted: false, limit: "tokens", retryAfterMs: wait };
      }
    }
    this.buckets.set(identity, {
      limits,
      ...(requests ? { requests: { ...requests, available: requests.available - 1 } } : {}),
      ...(tokens ? { tokens: { ...tokens, available: tokens.available - reservedTokens } } : {}),
    });
    return { admitted: true, reservedTokens };
  }

  /** Corrects a reservation once the response told how many tokens the request really used. */
  settle(identity: string, limits: RateLimits, reservedTokens: number, usedTokens: number): void {
    if (limits.tokensPerMinute === undefined || reservedTokens === usedTokens) return;
    const state = this.buckets.get(identity);
    if (!state?.tokens) return;
    const tokens = refill(state.tokens, limits.tokensPerMinute, this.now());
    state.tokens = {
      available: Math.min(limits.tokensPerMinute, tokens.available + reservedTokens - usedTokens),
      updatedAt: tokens.updatedAt,
    };
  }

  get identities(): number {
    return this.buckets.size;
  }

  /** Full buckets carry no information: drop them now and then so idle identities do not pile up. */
  private maybeSweep(now: number): void {
    if (++this.admissionsSinceSweep < 1024) return;
    this.admissionsSinceSweep = 0;
    for (const [identity, state] of this.buckets) {
      const limits = state.limits;
      const requestsFull =
        !state.requests ||
        limits.requestsPerMinute === undefined ||
        refill(state.requests, limits.requestsPerMinute, now).available >= limits.requestsPerMinute;
      const tokensFull =
        !state.tokens ||
        limits.tokensPerMinute === undefined ||
        refill(state.tokens, limits.tokensPerMinute, now).available >= limits.tokensPerMinute;
      if (requestsFull && tokensFull) this.buckets.delete(identity);
    }
  }
}

/** Rough prompt tokens from the body size (≈4 characters a token) plus the completion budget. */
export function estimateTokens(bodySize: number, maxTokens: number | undefined): number {
  return Math.ceil(bodySize / 4) + (maxTokens ?? DEFAULT_COMPLETION_ESTIMATE);
}

/** Completion tokens assumed when a request names no max_tokens (settled later from usage). */
export const DEFAULT_COMPLETION_ESTIMATE = 256;

/**
 * Total tokens from a response's `usage` (OpenAI shape), searched in the tail of a JSON body or of
 * an SSE stream (its usage chunk comes last). Undefined when the response carries none.
 */
export function usageTokens(tail: string): number | undefined {
  const at = tail.lastIndexOf('"usage"');
  if (at < 0) return undefined;
  const rest = tail.slice(at, at + 400);
  const total = /"total_tokens"\s*:\s*(\d+)/.exec(rest);
  if (total) return Number(total[1]);
  const prompt = /"prompt_tokens"\s*:\s*(\d+)/.exec(rest);
  const completion = /"completion_tokens"\s*:\s*(\d+)/.exec(rest);
  if (!prompt && !completion) return undefined;
  return Number(prompt?.[1] ?? 0) + Number(completion?.[1] ?? 0);
}
