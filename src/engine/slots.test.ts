// chooseSlot: a long shared prefix wins, else the lowest empty slot, else the least-recently-used one;
// one prompt token always left.
import { describe, expect, it } from "vitest";
import { chooseSlot, commonPrefixLength } from "./slots.js";

const prompt = Array.from({ length: 40 }, (_, index) => 100 + index);

describe("chooseSlot", () => {
  it.each([
    { name: "no free slot", free: [], expected: undefined },
    {
      name: "lowest free slot when nothing is cached",
      free: [
        { index: 5, tokens: [] },
        { index: 2, tokens: [] },
      ],
      expected: { index: 2, reusedTokens: 0 },
    },
    {
      name: "no long prefix, nothing empty: the least-recently-used slot, keeping its own short prefix",
      free: [
        { index: 1, tokens: prompt.slice(0, 10), lastUsed: 9 },
        { index: 4, tokens: prompt.slice(0, 3), lastUsed: 2 },
        { index: 6, tokens: [1, 2, 3], lastUsed: 5 },
      ],
      expected: { index: 4, reusedTokens: 3 },
    },
    {
      name: "no long prefix: an empty slot before evicting any cache",
      free: [
        { index: 0, tokens: [1, 2, 3], lastUsed: 1 },
        { index: 5, tokens: [] },
        { index: 3, tokens: [] },
      ],
      expected: { index: 3, reusedTokens: 0 },
    },
    {
      name: "least-recently-used ties (never used): the lower slot",
      free: [
        { index: 2, tokens: [7] },
        { index: 1, tokens: [8] },
      ],
      expected: { index: 1, reusedTokens: 0 },
    },
    {
      name: "a prefix one token short of minReuse does not move the request",
      free: [
        { index: 0, tokens: [] },
        { index: 3, tokens: prompt.slice(0, 15), lastUsed: 4 },
      ],
      expected: { index: 0, reusedTokens: 0 },
    },
    {
      name: "a long prefix beats an empty slot and an older one",
      free: [
        { index: 1, tokens: [] },
        { index: 2, tokens: [5, 5], lastUsed: 1 },
        { index: 6, tokens: [...prompt.slice(0, 30), 9, 9], lastUsed: 8 },
      ],
      expected: { index: 6, reusedTokens: 30 },
    },
    {
      name: "the longest of several long prefixes",
      free: [
        { index: 0, tokens: prompt.slice(0, 20), lastUsed: 1 },
        { index: 1, tokens: prompt.slice(0, 35), lastUsed: 2 },
        { index: 2, tokens: prompt.slice(0, 25), lastUsed: 3 },
      ],
      expected: { index: 1, reusedTokens: 35 },
    },
    {
      name: "equal long prefixes: the lower slot",
      free: [
        { index: 7, tokens: prompt.slice(0, 20) },
        { index: 3, tokens: prompt.slice(0, 20) },
        { index: 0, tokens: [] },
      ],
      expected: { index: 3, reusedTokens: 20 },
    },
    {
      name: "the whole prompt cached: its last token is evaluated again",
      free: [{ index: 0, tokens: [...prompt, 1, 2, 3] }],
      expected: { index: 0, reusedTokens: 39 },
    },
  ])("$name", ({ free, expected }) => {
    expect(chooseSlot(free, prompt, 16)).toEqual(expected);
  });

  it("a one-token prompt reuses nothing", () => {
    expect(chooseSlot([{ index: 0, tokens: [7, 8] }], [7], 1)).toEqual({ index: 0, reusedTokens: 0 });
  });
});

describe("commonPrefixLength", () => {
  it.each([
    [[1, 2, 3], [1, 2, 4], 2],
    [[1, 2], [1, 2, 3], 2],
    [[], [1], 0],
    [[5], [6], 0],
  ])("%j %j → %i", (a, b, expected) => {
    expect(commonPrefixLength(a, b)).toBe(expected);
  });
});
