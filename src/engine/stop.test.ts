// StopMatcher: stop strings across pushes, held-back prefixes, earliest match, flush at the end.
import { describe, expect, it } from "vitest";
import { longestStopPrefixSuffix, StopMatcher } from "./stop.js";

function run(stops: string[], pieces: string[]): { emitted: string[]; stopped: boolean; flushed: string } {
  const matcher = new StopMatcher(stops);
  const emitted: string[] = [];
  for (const piece of pieces) {
    const step = matcher.push(piece);
    emitted.push(step.emit);
    if (step.stopped) return { emitted, stopped: true, flushed: "" };
  }
  return { emitted, stopped: false, flushed: matcher.flush() };
}

describe("StopMatcher", () => {
  it.each([
    {
      name: "no stops passes text through",
      stops: [],
      pieces: ["ab", "cd"],
      emitted: ["ab", "cd"],
      stopped: false,
      flushed: "",
    },
    {
      name: "stop inside one piece",
      stops: ["\n\n"],
      pieces: ["hello\n\nworld"],
      emitted: ["hello"],
      stopped: true,
      flushed: "",
    },
    {
      name: "stop spanning pieces is held then cut",
      stops: ["END"],
      pieces: ["abc E", "N", "D more"],
      emitted: ["abc ", "", ""],
      stopped: true,
      flushed: "",
    },
    {
      name: "a false start is released",
      stops: ["END"],
      pieces: ["abc E", "N", "x"],
      emitted: ["abc ", "", "ENx"],
      stopped: false,
      flushed: "",
    },
    {
      name: "held tail released by flush",
      stops: ["END"],
      pieces: ["abc EN"],
      emitted: ["abc "],
      stopped: false,
      flushed: "EN",
    },
    {
      name: "earliest of several stops wins",
      stops: ["world", "lo"],
      pieces: ["hello world"],
      emitted: ["hel"],
      stopped: true,
      flushed: "",
    },
    {
      name: "stop at the very start",
      stops: ["x"],
      pieces: ["xyz"],
      emitted: [""],
      stopped: true,
      flushed: "",
    },
    {
      name: "overlapping prefix keeps the longest candidate",
      stops: ["aab"],
      pieces: ["aa", "a", "b"],
      emitted: ["", "a", ""],
      stopped: true,
      flushed: "",
    },
  ])("$name", ({ stops, pieces, emitted, stopped, flushed }) => {
    expect(run(stops, pieces)).toEqual({ emitted, stopped, flushed });
  });

  it("never releases text that later turns out to be part of a stop", () => {
    const stop = "<|im_end|>";
    const text = `answer${stop}tail`;
    const matcher = new StopMatcher([stop]);
    let released = "";
    for (const char of text) {
      const step = matcher.push(char);
      released += step.emit;
      // The only "<" belongs to the stop sequence: at no point may any of it have been released.
      expect(released).not.toContain("<");
      if (step.stopped) break;
    }
    expect(released).toBe("answer");
  });
});

describe("longestStopPrefixSuffix", () => {
  it.each([
    ["abc", ["cd"], 1],
    ["abc", ["bcd", "cd"], 2],
    ["abc", ["abc"], 0], // a full match is not a proper prefix: the matcher finds it first
    ["", ["a"], 0],
    ["xyz", ["a"], 0],
  ] as const)("%s with %j → %i", (text, stops, expected) => {
    expect(longestStopPrefixSuffix(text, stops)).toBe(expected);
  });
});
