// takeInOrder / observingInOrderStrategy: the batch a decode takes, in queue order, within its size.
import type { BatchItem } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { observingInOrderStrategy, takeInOrder } from "./batch.js";

function item(tokens: number): BatchItem {
  return { tokens: Array.from({ length: tokens }, () => 1) as never, logits: [], evaluationPriority: 5 };
}

describe("takeInOrder", () => {
  it("takes every item whole when they fit, in queue order", () => {
    const items = [item(1), item(1), item(12)];
    const { batch, sequences, tokens } = takeInOrder(items, 512);
    expect(batch.map((entry) => entry.item)).toEqual(items);
    expect(batch.map((entry) => entry.processAmount)).toEqual([1, 1, 12]);
    expect({ sequences, tokens }).toEqual({ sequences: 3, tokens: 14 });
  });

  it("clips the item that reaches the size and leaves the rest for the next decode", () => {
    const { batch, sequences, tokens } = takeInOrder([item(3), item(10), item(4)], 8);
    expect(batch.map((entry) => entry.processAmount)).toEqual([3, 5]);
    expect({ sequences, tokens }).toEqual({ sequences: 2, tokens: 8 });
  });
});

describe("observingInOrderStrategy", () => {
  it("reports each decode's sequences and tokens", () => {
    const seen: Array<[number, number]> = [];
    const strategy = observingInOrderStrategy((sequences, tokens) => seen.push([sequences, tokens]));
    strategy({ items: [item(1), item(1), item(1)], size: 512 });
    strategy({ items: [item(20)], size: 16 });
    expect(seen).toEqual([
      [3, 3],
      [1, 16],
    ]);
  });
});
