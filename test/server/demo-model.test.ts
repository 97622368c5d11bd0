// The trained demo model (examples/demo-model) behind a live `berth serve`, converted by Berth's own
// converter: where a test needs text that means something. Greedy output is English-like (words of
// the training text); a stop string that really occurs in it cuts the text just before it; a stream
// yields the same text as a plain request; a prompt that reuses a slot's cached prefix gives the same
// greedy text as one evaluated from scratch.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "../../src/models/convert/index.js";
import { DEMO_MODEL_DIR, trainingWordShare } from "../support/demo-model.js";
import { metricValue, type ServeProcess, startServe } from "../support/serve-process.js";

const MODEL = "kjv-demo";
const PROMPT = "And the LORD said";
// A word the demo model's greedy continuation of PROMPT really contains (checked below, so a
// retrained model that stops saying it fails loudly rather than passing vacuously).
const STOP = " LORD,";

let work: string;
let server: ServeProcess;
let client: OpenAI;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-demo-model-"));
  const { path } = await convertCheckpoint(DEMO_MODEL_DIR, join(work, "kjv-demo.gguf"), { dtype: "f16" });
  // One slot: every request runs in slot 0, so the prefix-reuse case below is deterministic.
  server = await startServe(["--model", path, "--model-id", MODEL, "--parallel", "1"]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(() => {
  server?.kill();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function greedy(prompt: string, maxTokens: number, stop?: string[]) {
  const completion = await client.completions.create({
    model: MODEL,
    prompt,
    max_tokens: maxTokens,
    temperature: 0,
    ...(stop ? { stop } : {}),
  });
  const choice = completion.choices[0]!;
  return { text: choice.text, finishReason: choice.finish_reason, usage: completion.usage };
}

describe("the demo model behind berth serve", () => {
  it("continues a prompt greedily in English-like text: words it read in training", async () => {
    const { text } = await greedy(PROMPT, 48);
    const share = trainingWordShare(text);
    expect(share.words.length, text).toBeGreaterThanOrEqual(12);
    expect(share.share, `${text}\nunknown: ${share.unknown.join(", ")}`).toBeGreaterThanOrEqual(0.9);
  });

  it("ends a completion just before a stop string that occurs in its greedy text", async () => {
    const plain = await greedy(PROMPT, 48);
    const at = plain.text.indexOf(STOP);
    expect(at, `"${STOP}" should occur in ${JSON.stringify(plain.text)}`).toBeGreaterThanOrEqual(0);

    const stopped = await greedy(PROMPT, 48, [STOP]);
    expect(stopped.text).toBe(plain.text.slice(0, at));
    expect(stopped.finishReason).toBe("stop");
    expect(stopped.usage?.completion_tokens).toBeLessThan(plain.usage?.completion_tokens ?? 0);
  });

  it("streams the same greedy text, in more than one piece", async () => {
    const plain = await greedy(PROMPT, 32);
    const stream = await client.completions.create({
      model: MODEL,
      prompt: PROMPT,
      max_tokens: 32,
      temperature: 0,
      stream: true,
    });
    const pieces: string[] = [];
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.text;
      if (piece) pieces.push(piece);
    }
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(plain.text);
  });

  it("gives the same greedy text for a prompt whose prefix is reused from the slot's cache", async () => {
    const first = await greedy(PROMPT, 24);
    const longer = PROMPT + first.text;
    const cached = `berth_prompt_tokens_cached_total{model="${MODEL}"}`;

    // Evict the slot's cache with an unrelated prompt, then evaluate `longer` from scratch.
    await greedy("In the beginning", 4);
    const beforeFresh = await metricValue(server.url, cached);
    const fresh = await greedy(longer, 16);
    const afterFresh = await metricValue(server.url, cached);

    // Now the slot holds `longer`: the same request again reuses that prefix.
    const reused = await greedy(longer, 16);
    const afterReused = await metricValue(server.url, cached);

    expect(afterFresh - beforeFresh).toBe(0);
    expect(afterReused - afterFresh).toBeGreaterThan(0);
    expect(trainingWordShare(fresh.text).words.length).toBeGreaterThan(0);
    expect(reused.text).toBe(fresh.text);
  });
});
