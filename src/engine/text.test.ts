// IncrementalDetokenizer over a byte-level "tokenizer" (one token = one UTF-8 byte), the worst case.
import { describe, expect, it } from "vitest";
import { IncrementalDetokenizer } from "./text.js";

const bytesOf = (text: string) => [...new TextEncoder().encode(text)];
const byteDetokenize = (tokens: readonly number[]) => new TextDecoder().decode(Uint8Array.from(tokens));

describe("IncrementalDetokenizer", () => {
  it.each(["plain ascii", "naïve café", "日本語", "🙂👍🏽", "mixed é 日 🙂 end"])(
    "streams %s without broken characters",
    (text) => {
      const detokenizer = new IncrementalDetokenizer(byteDetokenize);
      const pieces = bytesOf(text).map((byte) => detokenizer.push(byte));
      pieces.push(detokenizer.flush());
      expect(pieces.join("")).toBe(text);
      for (const piece of pieces) expect(piece).not.toContain("\uFFFD");
    },
  );

  it("releases a genuinely invalid byte after holding at most 4 tokens", () => {
    const detokenizer = new IncrementalDetokenizer(byteDetokenize);
    const pieces = [0xe6, 0x41, 0x42, 0x43].map((byte) => detokenizer.push(byte));
    // 0xE6 starts a 3-byte character that never completes; "A" shows it is broken, released at once.
    expect(pieces.join("")).toBe("\uFFFDABC");
  });

  it("flushes an incomplete tail at the end", () => {
    const detokenizer = new IncrementalDetokenizer(byteDetokenize);
    expect(detokenizer.push(0xf0)).toBe("");
    expect(detokenizer.push(0x9f)).toBe("");
    expect(detokenizer.flush()).toBe("\uFFFD");
    expect(detokenizer.flush()).toBe("");
  });
});
