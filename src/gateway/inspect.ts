// Reads only what routing needs from a request body (model, stream, max tokens, prompt prefix)
// without building the whole JSON tree; the body itself is forwarded as the original bytes.

export interface RequestSummary {
  /** The `model` field; undefined when absent or not a string. */
  model?: string;
  stream: boolean;
  /** max_tokens, max_completion_tokens or (seed route) max_length. */
  maxTokens?: number;
  /** Body size in characters: a rough upper bound of the prompt, for token estimates. */
  size: number;
  /** The prompt's first `length` characters (prefix-hash); undefined when there is no text prompt. */
  promptPrefix(length: number): string | undefined;
}

const WANTED_FIELDS = new Set([
  "model",
  "stream",
  "max_tokens",
  "max_completion_tokens",
  "max_length",
  "prompt",
  "messages",
  "text",
]);

/** Summarises a JSON object body; undefined when the text is not a JSON object. */
export function inspectJsonBody(text: string): RequestSummary | undefined {
  const fields = scanObjectFields(text, WANTED_FIELDS);
  if (!fields) return undefined;
  const raw = (name: string): string | undefined => {
    const span = fields.get(name);
    return span ? text.slice(span[0], span[1]) : undefined;
  };
  const modelRaw = raw("model");
  const model = modelRaw?.startsWith('"') ? decodeJsonString(modelRaw) : undefined;
  const maxTokens =
    numberOrUndefined(raw("max_tokens")) ??
    numberOrUndefined(raw("max_completion_tokens")) ??
    numberOrUndefined(raw("max_length"));
  return {
    ...(model === undefined ? {} : { model }),
    stream: raw("stream") === "true",
    ...(maxTokens === undefined ? {} : { maxTokens }),
    size: text.length,
    promptPrefix: (length) => {
      const prompt = raw("prompt") ?? raw("text");
      if (prompt !== undefined) return completionPromptPrefix(prompt, length);
      const messages = raw("messages");
      return messages === undefined ? undefined : chatPromptPrefix(messages, length);
    },
  };
}

/** Summarises an application/x-www-form-urlencoded body (the seed route's form). */
export function inspectFormBody(text: string): RequestSummary {
  const form = new URLSearchParams(text);
  const maxTokens = numberOrUndefined(form.get("max_length") ?? form.get("max_tokens") ?? undefined);
  const model = form.get("model") ?? undefined;
  return {
    ...(model === undefined ? {} : { model }),
    stream: false,
    ...(maxTokens === undefined ? {} : { maxTokens }),
    size: text.length,
    promptPrefix: (length) => form.get("text")?.slice(0, length),
  };
}

/** A body we do not look into (multipart): routed by query or default model. */
export function opaqueBody(size: number): RequestSummary {
  return { stream: false, size, promptPrefix: () => undefined };
}

function numberOrUndefined(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

function decodeJsonString(raw: string): string | undefined {
  if (!raw.includes("\\")) return raw.slice(1, -1);
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Leading characters of a JSON string without decoding all of it when no escape comes early. */
function jsonStringPrefix(raw: string, length: number): string | undefined {
  const head = raw.slice(1, 1 + length + 1);
  if (!head.includes("\\")) return raw.slice(1, Math.min(raw.length - 1, 1 + length));
  return decodeJsonString(raw)?.slice(0, length);
}

function completionPromptPrefix(raw: string, length: number): string | undefined {
  if (raw.startsWith('"')) return jsonStringPrefix(raw, length);
  if (!raw.startsWith("[")) return undefined;
  // An array of prompts routes by the first; an array of token ids by its leading text.
  const first = raw.slice(1).trimStart();
  if (first.startsWith('"')) {
    const end = findStringEnd(first, 0);
    return end < 0 ? undefined : jsonStringPrefix(first.slice(0, end + 1), length);
  }
  return raw.slice(0, length);
}

function chatPromptPrefix(raw: string, length: number): string | undefined {
  let messages: unknown;
  try {
    messages = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!Array.isArray(messages)) return undefined;
  let text = "";
  for (const message of messages) {
    if (text.length >= length) break;
    if (typeof message !== "object" || message === null) continue;
    const { role, content } = message as { role?: unknown; content?: unknown };
    text += `${typeof role === "string" ? role : ""}:${contentText(content)}\n`;
  }
  return text.slice(0, length);
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part) =>
      typeof part === "object" && part !== null && typeof (part as { text?: unknown }).text === "string"
        ? (part as { text: string }).text
        : "",
    )
    .join("");
}

// ---- a minimal scanner over one JSON object's top-level fields ----

/** [start, end) of each wanted top-level field's raw value; undefined when not a JSON object. */
export function scanObjectFields(
  text: string,
  wanted: ReadonlySet<string>,
): Map<string, [number, number]> | undefined {
  const fields = new Map<string, [number, number]>();
  let index = skipWhitespace(text, 0);
  if (text[index] !== "{") return undefined;
  index = skipWhitespace(text, index + 1);
  if (text[index] === "}") return skipWhitespace(text, index + 1) === text.length ? fields : undefined;
  for (;;) {
    if (text[index] !== '"') return undefined;
    const keyEnd = findStringEnd(text, index);
    if (keyEnd < 0) return undefined;
    const key = decodeJsonString(text.slice(index, keyEnd + 1));
    index = skipWhitespace(text, keyEnd + 1);
    if (text[index] !== ":") return undefined;
    const valueStart = skipWhitespace(text, index + 1);
    const valueEnd = skipValue(text, valueStart);
    if (valueEnd < 0) return undefined;
    // Later duplicates win, as with JSON.parse.
    if (key !== undefined && wanted.has(key)) fields.set(key, [valueStart, valueEnd]);
    index = skipWhitespace(text, valueEnd);
    if (text[index] === ",") {
      index = skipWhitespace(text, index + 1);
      continue;
    }
    if (text[index] === "}") return skipWhitespace(text, index + 1) === text.length ? fields : undefined;
    return undefined;
  }
}

function skipWhitespace(text: string, index: number): number {
  while (index < text.length) {
    const code = text.charCodeAt(index);
    if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) break;
    index++;
  }
  return index;
}

/** Index of the closing quote of the string opening at `start`, or -1. */
function findStringEnd(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return -1;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

/** Index just past the JSON value starting at `start`, or -1 when it is cut off or not a value. */
function skipValue(text: string, start: number): number {
  const first = text[start];
  if (first === undefined) return -1;
  if (first === '"') {
    const end = findStringEnd(text, start);
    return end < 0 ? -1 : end + 1;
  }
  if (first === "{" || first === "[") {
    // Jumps between structural characters with a native regex search; brackets inside strings are skipped.
    const structural = /["{}[\]]/g;
    let depth = 0;
    structural.lastIndex = start;
    for (;;) {
      const match = structural.exec(text);
      if (!match) return -1;
      const char = match[0];
      if (char === '"') {
        const end = findStringEnd(text, match.index);
        if (end < 0) return -1;
        structural.lastIndex = end + 1;
      } else if (char === "{" || char === "[") {
        depth++;
      } else {
        depth--;
        if (depth === 0) return match.index + 1;
      }
    }
  }
  if (first === "}" || first === "]" || first === "," || first === ":") return -1;
  const scalarEnd = /[,}\]\s]/g;
  scalarEnd.lastIndex = start;
  const match = scalarEnd.exec(text);
  const end = match ? match.index : text.length;
  return end === start ? -1 : end;
}
