// Turns chat messages into one prompt: the model's own chat template (GGUF tokenizer.chat_template)
// when it has one, else Berth's plain default template, documented below and in the README.

import type { Engine } from "../engine/types.js";
import type { ChatMessageInput } from "./schemas.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** OpenAI message → plain role and text. "developer" is OpenAI's newer name for "system". */
export function normalizeMessages(messages: readonly ChatMessageInput[]): ChatMessage[] {
  return messages.map((message) => {
    const content =
      typeof message.content === "string"
        ? message.content
        : (message.content ?? []).map((part) => part.text).join("\n");
    return { role: message.role === "developer" ? "system" : message.role, content };
  });
}

/**
 * The default template, for models without a chat template (GPT-2 has none): one line per message,
 * `role: content`, then `assistant:` for the model to continue. Example:
 *
 *   system: You are terse.
 *   user: Hi
 *   assistant:
 *
 * No space follows the final colon: GPT-2's tokens carry their leading space (" Hello"); for the
 * same reason an assistant message that starts with a space gets none added after its colon.
 */
export function renderDefaultChat(messages: readonly ChatMessage[]): string {
  return `${messages.map((message) => `${message.role}:${separatorBefore(message)}${message.content}`).join("\n")}\nassistant:`;
}

/**
 * An answer the model gave after "assistant:" starts with its own space (" Hello"): it follows the
 * colon as it was generated, so an earlier turn sent back reads, and tokenizes, as the slot's KV
 * cache holds it, and the next turn reuses the answer too (with a second space added, reuse
 * stopped at every answer's first token: bench/README.md, "Multi-turn prefix reuse").
 */
function separatorBefore(message: ChatMessage): string {
  return message.role === "assistant" && /^\s/.test(message.content) ? "" : " ";
}

/** A rendered prompt piece: template text may hold special tokens, message text never does. */
export type PromptPiece = { text: string; special: boolean };

export type ChatRenderer = (messages: readonly ChatMessage[]) => PromptPiece[];

/** Renders with the GGUF Jinja template through node-llama-cpp, which keeps message text apart from template text. */
async function jinjaRenderer(template: string): Promise<ChatRenderer> {
  const { JinjaTemplateChatWrapper, SpecialToken, SpecialTokensText } = await import("node-llama-cpp");
  const wrapper = new JinjaTemplateChatWrapper({ template });
  return (messages) => {
    const chatHistory = messages.map((message) =>
      message.role === "assistant"
        ? { type: "model" as const, response: [message.content] }
        : { type: message.role, text: message.content },
    );
    // An empty model turn at the end renders the generation prompt (e.g. "<|im_start|>assistant\n").
    chatHistory.push({ type: "model", response: [] });
    const { contextText } = wrapper.generateContextState({ chatHistory });
    const pieces: PromptPiece[] = [];
    for (const value of contextText.values) {
      if (typeof value === "string") pieces.push({ text: value, special: false });
      else if (value instanceof SpecialTokensText) pieces.push({ text: value.value, special: true });
      // BOS comes from the engine's tokenize(); other builtin tokens have no text to render.
      else if (value instanceof SpecialToken && value.value === "NL")
        pieces.push({ text: "\n", special: false });
    }
    return pieces;
  };
}

const defaultRenderer: ChatRenderer = (messages) => [{ text: renderDefaultChat(messages), special: false }];

/**
 * The renderer for a model: its own template when it has a usable one, else the default. A
 * template node-llama-cpp cannot run falls back to the default and is reported through onFallback.
 */
export async function chatRendererFor(
  template: string | undefined,
  onFallback: (error: unknown) => void,
): Promise<ChatRenderer> {
  if (template === undefined || template.trim().length === 0) return defaultRenderer;
  try {
    return await jinjaRenderer(template);
  } catch (error) {
    onFallback(error);
    return defaultRenderer;
  }
}

function sameTokens(left: readonly number[], right: readonly number[]): boolean {
  return left.length === right.length && left.every((token, index) => token === right[index]);
}

/**
 * Tokenizes rendered pieces as one text with special-token parsing, as llama.cpp's server does, so
 * BPE merges across template/message boundaries stay as the model saw them in training. The one
 * exception: a message whose own text would parse into special tokens (a user typing
 * "<|im_end|>") is tokenized on its own, as plain text, so users cannot forge turns.
 */
export function tokenizePieces(engine: Engine, pieces: readonly PromptPiece[]): number[] {
  const segments: PromptPiece[] = [];
  let merged = "";
  for (const piece of pieces) {
    const forgesSpecialTokens =
      !piece.special &&
      !sameTokens(
        engine.tokenize(piece.text, { special: true }),
        engine.tokenize(piece.text, { special: false }),
      );
    if (!forgesSpecialTokens) {
      merged += piece.text;
      continue;
    }
    if (merged.length > 0) segments.push({ text: merged, special: true });
    segments.push(piece);
    merged = "";
  }
  if (merged.length > 0) segments.push({ text: merged, special: true });

  // tokenize() adds BOS when the model wants it: keep it once, at the start.
  const bosPrefix = engine.tokenize("");
  const tokens = [...bosPrefix];
  for (const segment of segments) {
    const segmentTokens = engine.tokenize(segment.text, { special: segment.special });
    const skip = bosPrefix.length > 0 && segmentTokens[0] === bosPrefix[0] ? 1 : 0;
    for (let index = skip; index < segmentTokens.length; index++) tokens.push(segmentTokens[index]!);
  }
  return tokens;
}
