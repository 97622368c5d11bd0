// GenerationStream: buffered chunks, end and failure, single consumer, early exit abandons.
import { describe, expect, it } from "vitest";
import { GenerationStream } from "./stream.js";

const result = {
  text: "ab",
  finishReason: "length" as const,
  promptTokens: 1,
  completionTokens: 2,
  cachedPromptTokens: 0,
  timeToFirstToken: 0.1,
};

describe("GenerationStream", () => {
  it("delivers chunks pushed before and while the consumer reads, then ends", async () => {
    const stream = new GenerationStream(() => undefined);
    stream.push({ text: "a", tokens: [1] });
    const reading = (async () => {
      const texts: string[] = [];
      for await (const chunk of stream) texts.push(chunk.text);
      return texts;
    })();
    await Promise.resolve();
    stream.push({ text: "b", tokens: [2] });
    stream.finish(result);
    expect(await reading).toEqual(["a", "b"]);
    expect(await stream.result).toEqual(result);
  });

  it("fails the iteration and the result with the same error, after buffered chunks", async () => {
    const stream = new GenerationStream(() => undefined);
    stream.push({ text: "a", tokens: [1] });
    stream.fail(new Error("boom"));
    const iterator = stream[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ value: { text: "a", tokens: [1] }, done: false });
    await expect(iterator.next()).rejects.toThrow("boom");
    await expect(stream.result).rejects.toThrow("boom");
  });

  it("calls onAbandon when the consumer leaves early, not after the end", async () => {
    let abandoned = 0;
    const stream = new GenerationStream(() => abandoned++);
    stream.push({ text: "a", tokens: [1] });
    for await (const _chunk of stream) break;
    expect(abandoned).toBe(1);

    const ended = new GenerationStream(() => abandoned++);
    ended.finish(result);
    for await (const _chunk of ended) break;
    expect(abandoned).toBe(1);
  });

  it("can be iterated only once", () => {
    const stream = new GenerationStream(() => undefined);
    stream[Symbol.asyncIterator]();
    expect(() => stream[Symbol.asyncIterator]()).toThrow(/only once/);
  });
});
