// Observes each llama.cpp decode call's batch through node-llama-cpp's public batching hook
// (`batching.itemPrioritizationStrategy`), which is handed exactly the queue that one decode will take.
import type { BatchItem, CustomBatchingPrioritizationStrategy, PrioritizedBatchItem } from "node-llama-cpp";

export type BatchListener = (sequences: number, tokens: number) => void;

/**
 * A prioritization strategy that takes queued items in queue order, each whole while it fits in
 * `size` tokens, and reports the batch it formed. node-llama-cpp calls the strategy once per
 * decode call and decodes exactly what it returns (an item per sequence, amounts clipped the same
 * way), so the reported numbers are the decode's real batch.
 *
 * Queue order is kept on purpose: the engine's driver loop queues sequences in ascending slot order,
 * which is the order llama.cpp needs to run them in one pass. The engine keeps each step's tokens
 * under `size`, so nothing is clipped in practice and this matches the default "maximumParallelism".
 */
export function observingInOrderStrategy(onBatch: BatchListener): CustomBatchingPrioritizationStrategy {
  return ({ items, size }) => {
    const { batch, sequences, tokens } = takeInOrder(items, size);
    if (tokens > 0) onBatch(sequences, tokens);
    return batch;
  };
}

export function takeInOrder(
  items: readonly BatchItem[],
  size: number,
): { batch: PrioritizedBatchItem[]; sequences: number; tokens: number } {
  const batch: PrioritizedBatchItem[] = [];
  let left = size;
  for (const item of items) {
    if (left <= 0) break;
    const processAmount = Math.min(item.tokens.length, left);
    if (processAmount <= 0) continue;
    batch.push({ item, processAmount });
    left -= processAmount;
  }
  return { batch, sequences: batch.length, tokens: size - left };
}
