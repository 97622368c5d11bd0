// Which free slot (sequence of the shared context) a new request goes to, and how much of its
// prompt that slot's KV cache already holds. Pure: the engine passes in the free slots' tokens.

export interface FreeSlot {
  /** Slot index = llama.cpp sequence id; slots are created once, 0..N-1. */
  index: number;
  /** Tokens whose KV cache the slot still holds from its previous request. */
  tokens: readonly number[];
  /** When the slot last took a request (any increasing count); 0 = never. Default 0. */
  lastUsed?: number;
}

export interface SlotChoice {
  index: number;
  /** Prompt tokens to keep from the slot's cache; the slot's cache is erased after them. */
  reusedTokens: number;
}

/** Prefixes shorter than this are not worth leaving an empty or least-recently-used slot for. */
export const DEFAULT_MIN_PREFIX_REUSE = 16;

export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const limit = Math.min(a.length, b.length);
  let length = 0;
  while (length < limit && a[length] === b[length]) length++;
  return length;
}

/**
 * Picks a slot for `prompt` among `free` (in any order); undefined when none is free. In order:
 *
 * 1. The slot whose cached prefix is the longest match, when it is at least `minReuse` tokens (a
 *    multi-turn chat's earlier turns, a shared system prompt): those tokens are not evaluated again.
 * 2. Else the lowest empty slot (cache empty: never used, or cleared after a failure): it evicts
 *    nothing, and the lowest keeps the running batch dense (llama.cpp runs one forward pass only over
 *    ascending, consecutive sequence ids; a hole below a busy slot splits every decode: 8 sequences
 *    19 ms a step, with one hole 26 ms).
 * 3. Else the least-recently-used slot: its cached prefix is the one least likely to be asked for
 *    again, so the caches of the conversations that are still going survive (taking the lowest
 *    slot instead evicted the same slot's cache over and over, and with it every other session's
 *    next turn).
 *
 * The chosen slot's own shared prefix is always reused, however short. At least one prompt token is
 * always left to evaluate: its logits give the first new token.
 */
export function chooseSlot(
  free: readonly FreeSlot[],
  prompt: readonly number[],
  minReuse = DEFAULT_MIN_PREFIX_REUSE,
): SlotChoice | undefined {
  let longest: { slot: FreeSlot; reused: number } | undefined;
  let lowestEmpty: FreeSlot | undefined;
  let leastRecent: FreeSlot | undefined;
  for (const slot of free) {
    const reused = reusable(slot, prompt);
    if (
      longest === undefined ||
      reused > longest.reused ||
      (reused === longest.reused && slot.index < longest.slot.index)
    )
      longest = { slot, reused };
    if (slot.tokens.length === 0 && (lowestEmpty === undefined || slot.index < lowestEmpty.index))
      lowestEmpty = slot;
    if (leastRecent === undefined || olderThan(slot, leastRecent)) leastRecent = slot;
  }
  if (longest === undefined) return undefined;
  const slot = longest.reused >= minReuse ? longest.slot : (lowestEmpty ?? leastRecent ?? longest.slot);
  return { index: slot.index, reusedTokens: reusable(slot, prompt) };
}

function reusable(slot: FreeSlot, prompt: readonly number[]): number {
  return Math.max(0, Math.min(commonPrefixLength(slot.tokens, prompt), prompt.length - 1));
}

function olderThan(a: FreeSlot, b: FreeSlot): boolean {
  const aUsed = a.lastUsed ?? 0;
  const bUsed = b.lastUsed ?? 0;
  return aUsed < bUsed || (aUsed === bUsed && a.index < b.index);
}
