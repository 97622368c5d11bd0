// Turns generated tokens into text one token at a time without breaking multi-byte characters:
// a token that ends inside a UTF-8 character is held until the tokens that complete it arrive.

/** Detokenizes `tokens`; `previous` are the tokens just before them (some tokenizers need them for spacing). */
export type Detokenize = (tokens: readonly number[], previous: readonly number[]) => string;

// A UTF-8 character has at most 4 bytes, and byte-level BPE tokens carry at least one byte each,
// so 4 held tokens that still end in U+FFFD hold a real replacement character, not a split one.
const MAX_HELD_TOKENS = 4;
const PREVIOUS_TOKENS = 8;
const REPLACEMENT_CHARACTER = "\uFFFD";

export class IncrementalDetokenizer {
  private pending: number[] = [];
  private readonly released: number[] = [];

  constructor(private readonly detokenize: Detokenize) {}

  /** Adds one token; returns the text that is now complete ("" while a character is incomplete). */
  push(token: number): string {
    this.pending.push(token);
    const text = this.detokenize(this.pending, this.released.slice(-PREVIOUS_TOKENS));
    if (text.endsWith(REPLACEMENT_CHARACTER) && this.pending.length < MAX_HELD_TOKENS) return "";
    this.release();
    return text;
  }

  /** At the end of a generation: whatever is held, as it decodes. */
  flush(): string {
    if (this.pending.length === 0) return "";
    const text = this.detokenize(this.pending, this.released.slice(-PREVIOUS_TOKENS));
    this.release();
    return text;
  }

  private release(): void {
    this.released.push(...this.pending);
    if (this.released.length > PREVIOUS_TOKENS)
      this.released.splice(0, this.released.length - PREVIOUS_TOKENS);
    this.pending = [];
  }
}
