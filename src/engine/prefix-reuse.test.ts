// Multi-turn prefix reuse on the real engine (tiny GPT-2 model): several chat sessions taking turns
// each find their earlier turns still cached (slots.ts: longest prefix, else an empty slot, else the
// least recently used), and an engine with prefixReuse off evaluates every prompt from scratch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../models/tiny.js";
import { createLlamaEngine } from "./llamacpp.js";
import { commonPrefixLength } from "./slots.js";
import type { Engine } from "./types.js";

let modelPath: string;
const engines: Engine[] = [];

beforeAll(async () => {
  modelPath = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
}, 120_000);

afterAll(async () => {
  await Promise.all(engines.map((engine) => engine.close()));
});

async function engineWith(options: { parallel: number; prefixReuse?: boolean }): Promise<Engine> {
  const engine = await createLlamaEngine({ modelPath, contextPerSequence: 256, threads: 1, ...options });
  engines.push(engine);
  return engine;
}

/** One chat session: its transcript so far (prompt tokens of the next turn). */
class Session {
  transcript: number[];
  constructor(
    private readonly engine: Engine,
    opening: string,
  ) {
    this.transcript = engine.tokenize(opening);
  }

  private lastPrompt: number[] = [];

  /**
   * Sends the transcript plus `said`; returns how many prompt tokens came from the cache and the
   * previous turn's prompt length (the completion's tokens, re-tokenized from its text, may differ
   * from the generated ones at the edge, so only the previous prompt is sure to be cached).
   */
  async turn(said: string): Promise<{ cached: number; previousPrompt: number }> {
    const previousPrompt = this.lastPrompt.length;
    const prompt = [...this.transcript, ...this.engine.tokenize(said)];
    this.lastPrompt = prompt;
    const result = await this.engine.generate({ prompt, maxTokens: 4, temperature: 0, ignoreEos: true })
      .result;
    this.transcript = [...prompt, ...this.engine.tokenize(result.text)];
    return { cached: result.cachedPromptTokens, previousPrompt };
  }
}

const OPENINGS = [
  "You are a ship's clerk. Keep the harbour ledger in order and answer in one line, no more.",
  "You are a gardener. Say which plants want sun and which want shade, briefly and plainly.",
  "You are a librarian. Name one book for each question and say nothing else about it.",
];

describe("prefix reuse across chat sessions", () => {
  it("each session's next turn reuses its earlier turns while other sessions run in between", async () => {
    const engine = await engineWith({ parallel: 3 });
    const sessions = OPENINGS.map((opening) => new Session(engine, opening));
    for (const session of sessions) expect((await session.turn(" Hello.")).cached).toBe(0);

    // Taking the lowest free slot would have put every first turn in slot 0, each evicting the last.
    for (const session of sessions) {
      const { cached, previousPrompt } = await session.turn(" And then?");
      expect(cached).toBeGreaterThanOrEqual(previousPrompt);
    }

    // A fourth session evicts the least recently used cache (the first session's), not the others.
    const bakerOpening = "You are a baker. Give one recipe per question, in one line.";
    const newcomer = new Session(engine, bakerOpening);
    // What it shares with the first session's cache ("You are a") and nothing more: it took that slot.
    const sharedWithFirst = commonPrefixLength(engine.tokenize(OPENINGS[0]!), engine.tokenize(bakerOpening));
    expect((await newcomer.turn(" Bread?")).cached).toBe(sharedWithFirst);
    const [, second, third] = sessions;
    for (const session of [second!, third!, newcomer]) {
      const { cached, previousPrompt } = await session.turn(" Thanks.");
      expect(cached).toBeGreaterThanOrEqual(previousPrompt);
    }
    const evicted = await sessions[0]!.turn(" Still there?");
    expect(evicted.cached).toBeLessThan(evicted.previousPrompt);
  });

  it("with prefixReuse off, evaluates every prompt from scratch", async () => {
    const engine = await engineWith({ parallel: 1, prefixReuse: false });
    const session = new Session(engine, OPENINGS[0]!);
    await session.turn(" Hello.");
    expect(await session.turn(" And then?")).toMatchObject({ cached: 0 });
  });
});
