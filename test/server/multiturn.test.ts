// A multi-turn chat through a live `berth serve` (tiny model) and the official openai client: the
// second turn reuses the first turn's prompt from the slot's KV cache, as usage.prompt_tokens_details
// .cached_tokens and berth_prompt_tokens_cached_total both say; with --no-prefix-reuse (the
// baseline bench:multiturn compares against) nothing is reused.

import OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { metricValue, type ServeProcess, startServe } from "../support/serve-process.js";

const MODEL = "tiny";
const CACHED = `berth_prompt_tokens_cached_total{model="${MODEL}"}`;
const servers: ServeProcess[] = [];
let modelPath: string;

beforeAll(async () => {
  modelPath = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
});

afterAll(() => {
  for (const server of servers) server.kill();
});

async function serve(...flags: string[]): Promise<{ server: ServeProcess; client: OpenAI }> {
  const server = await startServe(["--model", modelPath, "--model-id", MODEL, "--parallel", "2", ...flags]);
  servers.push(server);
  return { server, client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 }) };
}

/** Two turns of one conversation; the usage of each. */
async function twoTurns(client: OpenAI) {
  const messages: ChatCompletionMessageParam[] = [
    { role: "system", content: "You keep the harbour ledger. Answer with the ship's name and cargo only." },
    { role: "user", content: "Which ship came in this morning?" },
  ];
  const first = await client.chat.completions.create({
    model: MODEL,
    messages,
    max_tokens: 8,
    temperature: 0,
  });
  messages.push(
    { role: "assistant", content: first.choices[0]?.message.content ?? "" },
    { role: "user", content: "And what did it carry?" },
  );
  const second = await client.chat.completions.create({
    model: MODEL,
    messages,
    max_tokens: 8,
    temperature: 0,
  });
  return { first: first.usage!, second: second.usage! };
}

describe("multi-turn chat prefix reuse", () => {
  it("the second turn reuses the first turn's prompt from the slot's cache", async () => {
    const { server, client } = await serve();
    const before = await metricValue(server.url, CACHED);
    const { first, second } = await twoTurns(client);
    const after = await metricValue(server.url, CACHED);

    expect(first.prompt_tokens_details?.cached_tokens).toBe(0);
    expect(second.prompt_tokens_details?.cached_tokens).toBeGreaterThanOrEqual(first.prompt_tokens);
    expect(second.prompt_tokens_details?.cached_tokens).toBeLessThan(second.prompt_tokens);
    expect(after - before).toBe(second.prompt_tokens_details?.cached_tokens);
  });

  it("with --no-prefix-reuse every turn is evaluated from scratch", async () => {
    const { server, client } = await serve("--no-prefix-reuse");
    const { second } = await twoTurns(client);
    expect(second.prompt_tokens_details?.cached_tokens).toBe(0);
    expect(await metricValue(server.url, CACHED)).toBe(0);
  });
});
