import { describe, expect, it } from "vitest";
import { estimateTokens, RateLimiter, refill, usageTokens, waitFor } from "./ratelimit.js";

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("token bucket arithmetic", () => {
  it.each([
    {
      name: "refills at capacity per minute",
      bucket: { available: 0, updatedAt: 0 },
      capacity: 60,
      now: 1_000,
      expected: 1,
    },
    {
      name: "never beyond capacity",
      bucket: { available: 59, updatedAt: 0 },
      capacity: 60,
      now: 60_000,
      expected: 60,
    },
    { name: "from a debt", bucket: { available: -30, updatedAt: 0 }, capacity: 60, now: 30_000, expected: 0 },
    {
      name: "not backwards in time",
      bucket: { available: 5, updatedAt: 10 },
      capacity: 60,
      now: 5,
      expected: 5,
    },
  ])("$name", ({ bucket, capacity, now, expected }) => {
    expect(refill(bucket, capacity, now).available).toBeCloseTo(expected, 9);
  });

  it.each([
    { available: 1, capacity: 60, amount: 1, expected: 0 },
    { available: 0, capacity: 60, amount: 1, expected: 1_000 },
    { available: 0.5, capacity: 2, amount: 1, expected: 15_000 },
    // More than the bucket holds needs only a full bucket.
    { available: 0, capacity: 100, amount: 1_000, expected: 60_000 },
  ])(
    "waits $expected ms for $amount of $available/$capacity",
    ({ available, capacity, amount, expected }) => {
      expect(waitFor({ available, updatedAt: 0 }, capacity, amount)).toBe(expected);
    },
  );
});

describe("RateLimiter", () => {
  it("admits everything without limits", () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 100; i++) expect(limiter.admit("x", {}, 1_000).admitted).toBe(true);
    expect(limiter.identities).toBe(0);
  });

  it("allows a burst of requestsPerMinute, then 429s with the time to the next token", () => {
    const time = clock();
    const limiter = new RateLimiter(time.now);
    const limits = { requestsPerMinute: 3 };
    expect([1, 2, 3].map(() => limiter.admit("alice", limits, 0).admitted)).toEqual([true, true, true]);
    expect(limiter.admit("alice", limits, 0)).toEqual({
      admitted: false,
      limit: "requests",
      retryAfterMs: 20_000,
    });
    // Another identity has its own bucket.
    expect(limiter.admit("bob", limits, 0).admitted).toBe(true);
    time.advance(20_000);
    expect(limiter.admit("alice", limits, 0).admitted).toBe(true);
    expect(limiter.admit("alice", limits, 0).admitted).toBe(false);
  });

  it("reserves estimated tokens and refuses when they are not there", () => {
    const time = clock();
    const limiter = new RateLimiter(time.now);
    const limits = { tokensPerMinute: 600 };
    expect(limiter.admit("k", limits, 500)).toEqual({ admitted: true, reservedTokens: 500 });
    const refused = limiter.admit("k", limits, 200);
    expect(refused).toEqual({ admitted: false, limit: "tokens", retryAfterMs: 10_000 });
    time.advance(10_000);
    expect(limiter.admit("k", limits, 200).admitted).toBe(true);
  });

  it("settles a reservation against the usage the response reported", () => {
    const time = clock();
    const limiter = new RateLimiter(time.now);
    const limits = { tokensPerMinute: 600 };
    expect(limiter.admit("k", limits, 600).admitted).toBe(true);
    expect(limiter.admit("k", limits, 100).admitted).toBe(false);
    // The request used 100 of the 600 reserved: 500 come back.
    limiter.settle("k", limits, 600, 100);
    expect(limiter.admit("k", limits, 500).admitted).toBe(true);
    // Usage above the reservation puts the bucket in debt.
    limiter.settle("k", limits, 0, 300);
    const refused = limiter.admit("k", limits, 1);
    expect(refused.admitted).toBe(false);
    expect(refused.admitted === false && refused.retryAfterMs).toBe(30_100);
  });

  it("does not take a token of one kind when the other refuses", () => {
    const time = clock();
    const limiter = new RateLimiter(time.now);
    const limits = { requestsPerMinute: 2, tokensPerMinute: 100 };
    expect(limiter.admit("k", limits, 100).admitted).toBe(true);
    expect(limiter.admit("k", limits, 100)).toMatchObject({ admitted: false, limit: "tokens" });
    // The refused request did not spend the second request token.
    time.advance(60_000);
    expect(limiter.admit("k", limits, 1).admitted).toBe(true);
    expect(limiter.admit("k", limits, 1).admitted).toBe(true);
    expect(limiter.admit("k", limits, 1)).toMatchObject({ admitted: false, limit: "requests" });
  });

  it("forgets identities whose buckets are full again", () => {
    const time = clock();
    const limiter = new RateLimiter(time.now);
    const limits = { requestsPerMinute: 10 };
    for (let i = 0; i < 1000; i++) limiter.admit(`ip-${i}`, limits, 0);
    expect(limiter.identities).toBe(1000);
    time.advance(60_000);
    for (let i = 0; i < 30; i++) limiter.admit("fresh", limits, 0);
    expect(limiter.identities).toBeLessThan(10);
  });
});

describe("usage from responses", () => {
  it.each([
    {
      name: "a JSON body",
      tail: '{"id":"x","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}',
      expected: 12,
    },
    { name: "without total", tail: '"usage": {"prompt_tokens": 5, "completion_tokens": 7}', expected: 12 },
    {
      name: "the last SSE usage chunk",
      tail: 'data: {"usage":{"total_tokens":3}}\n\ndata: {"choices":[],"usage":{"total_tokens":40}}\n\ndata: [DONE]\n\n',
      expected: 40,
    },
    { name: "no usage", tail: '{"generated_text":"hello"}', expected: undefined },
    { name: "a usage without numbers", tail: '{"usage":null}', expected: undefined },
  ])("from $name", ({ tail, expected }) => {
    expect(usageTokens(tail)).toBe(expected);
  });

  it("estimates prompt tokens from the body size plus the completion budget", () => {
    expect(estimateTokens(400, 16)).toBe(116);
    expect(estimateTokens(4, undefined)).toBe(257);
  });
});
