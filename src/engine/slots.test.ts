// chooseSlot: lowest free slot by default, a long shared prefix wins, one prompt token always left.
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
      name: "lowest slot keeps its own short prefix",
      free: [
        { index: 1, tokens: prompt.slice(0, 3) },
        { index: 4, tokens: prompt.slice(0, 10) },
      ],
      expected: { index: 1, reusedTokens: 3 },
    },
    {
      name: "a long prefix elsewhere beats the lowest slot",
      free: [
        { index: 1, tokens: [] },
        { index: 6, tokens: [...prompt.slice(0, 30), 9, 9] },
      ],
      expected: { index: 6, reusedTokens: 30 },
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
