// The tokenizer half of a conversion: byte-level BPE vocabularies from tokenizer.json or
// vocab.json + merges.txt, special tokens and the chat template from tokenizer_config.json, as the
// tokenizer.* keys llama.cpp reads. Mirrors llama.cpp's convert_hf_to_gguf.py (_set_vocab_gpt2 and
// gguf-py's SpecialVocab) so the same checkpoint gives the same keys.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ModelError } from "../errors.js";
import { type GgufMetadata, gv } from "../gguf.js";
import { readJsonFile } from "./safetensors.js";

const TOKEN_TYPE = { normal: 1, control: 3, userDefined: 4, unused: 5 } as const;
const SPECIAL_TYPES = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"] as const;
const SPECIAL_ID_KEYS: Record<(typeof SPECIAL_TYPES)[number], string> = {
  bos: "tokenizer.ggml.bos_token_id",
  eos: "tokenizer.ggml.eos_token_id",
  unk: "tokenizer.ggml.unknown_token_id",
  sep: "tokenizer.ggml.seperator_token_id", // sic: llama.cpp's key
  pad: "tokenizer.ggml.padding_token_id",
  cls: "tokenizer.ggml.cls_token_id",
  mask: "tokenizer.ggml.mask_token_id",
};

/**
 * Pre-tokenizer regexes (as tokenizer.json spells them) and the tokenizer.ggml.pre name llama.cpp
 * gives them. llama.cpp's converter picks the name by hashing the tokens the checkpoint's own
 * tokenizer makes of a test string (get_vocab_base_pre); the hash is a proxy for exactly this
 * pre-tokenizer configuration, which Berth reads directly. The names below are the ones its hash
 * table gives the models that use these regexes (Llama 3 / SmolLM3: llama-bpe; Qwen2/2.5: qwen2).
 */
const SPLIT_REGEX_PRE: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    "llama-bpe",
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    "qwen2",
};

export interface TokenizerFiles {
  /** tokenizer.json, when the checkpoint has one. */
  tokenizerJson?: Record<string, unknown>;
  tokenizerConfig?: Record<string, unknown>;
  vocabSize: number;
  config: Record<string, unknown>;
}

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

function tokenizerError(dir: string, file: string, detail: string): ModelError {
  return new ModelError("BERTH_CHECKPOINT_TOKENIZER", detail, join(dir, file));
}

/** tokenizer.ggml.pre for a tokenizer.json pre_tokenizer, or an error naming what is unknown. */
export function preTokenizerName(preTokenizer: unknown, where: string): string {
  const node = preTokenizer as { type?: string; use_regex?: boolean; pretokenizers?: unknown[] } | null;
  if (node === null || node === undefined) {
    throw new ModelError(
      "BERTH_CHECKPOINT_TOKENIZER",
      "tokenizer.json has no pre_tokenizer; a byte-level BPE needs one",
      where,
    );
  }
  if (node.type === "ByteLevel" && node.use_regex !== false) return "gpt-2";
  if (node.type === "Sequence" && Array.isArray(node.pretokenizers)) {
    const parts = node.pretokenizers as {
      type?: string;
      individual_digits?: boolean;
      use_regex?: boolean;
      pattern?: { Regex?: string };
    }[];
    const split = parts.find((part) => part.type === "Split" && typeof part.pattern?.Regex === "string");
    if (split) {
      const name = SPLIT_REGEX_PRE[split.pattern!.Regex!];
      if (name) return name;
      throw new ModelError(
        "BERTH_CHECKPOINT_TOKENIZER",
        `pre-tokenizer regex ${JSON.stringify(split.pattern!.Regex)} is not one Berth knows (known: GPT-2 byte-level, ${Object.values(SPLIT_REGEX_PRE).join(", ")}, smollm)`,
        where,
      );
    }
    // SmolLM/SmolLM2: digits split one by one, then GPT-2's byte-level regex.
    const [first, second] = parts;
    if (
      parts.length === 2 &&
      first?.type === "Digits" &&
      first.individual_digits === true &&
      second?.type === "ByteLevel" &&
      second.use_regex !== false
    ) {
      return "smollm";
    }
    if (parts.length === 1 && first?.type === "ByteLevel" && first.use_regex !== false) return "gpt-2";
  }
  throw new ModelError(
    "BERTH_CHECKPOINT_TOKENIZER",
    `pre-tokenizer ${JSON.stringify(node).slice(0, 200)} is not one Berth knows (known: GPT-2 byte-level, ${Object.values(SPLIT_REGEX_PRE).join(", ")}, smollm)`,
    where,
  );
}

/** The tokenizer.* metadata of a byte-level BPE checkpoint. */
export async function tokenizerMetadata(dir: string, files: TokenizerFiles): Promise<GgufMetadata> {
  const { tokenizerJson, tokenizerConfig = {}, vocabSize, config } = files;
  let vocab: Record<string, number>;
  let merges: string[];
  let added: AddedToken[] = [];
  let pre: string;
  if (tokenizerJson) {
    const model = tokenizerJson.model as
      | { type?: string; vocab?: unknown; merges?: unknown; byte_fallback?: boolean }
      | undefined;
    if (model?.type !== "BPE") {
      throw tokenizerError(
        dir,
        "tokenizer.json",
        `tokenizer model ${JSON.stringify(model?.type)} is not supported (Berth converts byte-level BPE tokenizers; SentencePiece/Unigram/WordPiece are not supported yet)`,
      );
    }
    if (model.byte_fallback === true) {
      throw tokenizerError(
        dir,
        "tokenizer.json",
        "a BPE with byte_fallback is a SentencePiece-style (Llama 2/Mistral v0.1) tokenizer, which Berth does not convert yet; byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM) is supported",
      );
    }
    if (typeof model.vocab !== "object" || model.vocab === null) {
      throw tokenizerError(dir, "tokenizer.json", "model.vocab is not an object");
    }
    vocab = model.vocab as Record<string, number>;
    merges = mergesFromJson(model.merges, dir);
    const addedTokens = tokenizerJson.added_tokens;
    if (Array.isArray(addedTokens)) {
      added = addedTokens.map((token: { id?: unknown; content?: unknown; special?: unknown }) => ({
        id: Number(token.id),
        content: String(token.content),
        special: token.special === true,
      }));
    }
    pre = preTokenizerName(tokenizerJson.pre_tokenizer, join(dir, "tokenizer.json"));
  } else {
    const vocabJson = await readJsonFile(join(dir, "vocab.json"));
    if (vocabJson === undefined) {
      throw tokenizerError(
        dir,
        "tokenizer.json",
        "the checkpoint has neither tokenizer.json nor vocab.json + merges.txt",
      );
    }
    vocab = vocabJson as Record<string, number>;
    let mergesText: string;
    try {
      mergesText = await readFile(join(dir, "merges.txt"), "utf8");
    } catch {
      throw tokenizerError(dir, "merges.txt", "vocab.json without merges.txt: a BPE needs its merges");
    }
    merges = mergesText
      .split("\n")
      .map((line) => line.trim())
      .filter((line, index) => line.length > 0 && !(index === 0 && line.startsWith("#")))
      .map((line) => line.split(/\s+/).slice(0, 2).join(" "));
    // GPT2Tokenizer's byte-level pre-tokenizer.
    pre = "gpt-2";
  }
  // Added tokens the slow tokenizer keeps in tokenizer_config.json (transformers merges both).
  const decoder = tokenizerConfig.added_tokens_decoder;
  if (typeof decoder === "object" && decoder !== null) {
    for (const [id, token] of Object.entries(
      decoder as Record<string, { content?: unknown; special?: unknown }>,
    )) {
      if (!added.some((existing) => existing.id === Number(id))) {
        added.push({ id: Number(id), content: String(token.content), special: token.special === true });
      }
    }
  }

  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0) {
      throw tokenizerError(
        dir,
        tokenizerJson ? "tokenizer.json" : "vocab.json",
        `token ${JSON.stringify(token)} has id ${id}`,
      );
    }
    byId.set(id, token);
  }
  for (const token of added) byId.set(token.id, token.content);
  const maxId = Math.max(...byId.keys());
  if (maxId >= vocabSize) {
    throw tokenizerError(
      dir,
      tokenizerJson ? "tokenizer.json" : "vocab.json",
      `token id ${maxId} is outside the model's vocab_size ${vocabSize} (config.json)`,
    );
  }
  const addedById = new Map(added.map((token) => [token.id, token]));
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const token = byId.get(id);
    if (token === undefined) {
      tokens.push(`[PAD${id}]`);
      types.push(TOKEN_TYPE.unused);
      continue;
    }
    const addedToken = addedById.get(id);
    if (addedToken) {
      if (addedToken.special || looksSpecial(token)) {
        tokens.push(token);
        types.push(TOKEN_TYPE.control);
      } else {
        tokens.push(token.replaceAll("\u2581", " "));
        types.push(TOKEN_TYPE.userDefined);
      }
    } else {
      tokens.push(token);
      types.push(TOKEN_TYPE.normal);
    }
  }

  const metadata: GgufMetadata = new Map();
  metadata.set("tokenizer.ggml.model", gv.str("gpt2"));
  metadata.set("tokenizer.ggml.pre", gv.str(pre));
  metadata.set("tokenizer.ggml.tokens", gv.strings(tokens));
  metadata.set("tokenizer.ggml.token_type", gv.i32s(types));
  metadata.set("tokenizer.ggml.merges", gv.strings(merges));
  for (const [key, value] of specialTokens(tokenizerJson, tokenizerConfig, config, added, vocabSize)) {
    metadata.set(key, value);
  }
  const template = await chatTemplate(dir, tokenizerConfig);
  if (typeof template === "string") {
    metadata.set("tokenizer.chat_template", gv.str(template));
  } else if (template) {
    const names: string[] = [];
    for (const { name, template: text } of template) {
      if (name === "default") metadata.set("tokenizer.chat_template", gv.str(text));
      else {
        metadata.set(`tokenizer.chat_template.${name}`, gv.str(text));
        names.push(name);
      }
    }
    if (names.length > 0) metadata.set("tokenizer.chat_templates", gv.strings(names));
  }
  return metadata;
}

function mergesFromJson(merges: unknown, dir: string): string[] {
  if (!Array.isArray(merges) || merges.length === 0) {
    throw tokenizerError(dir, "tokenizer.json", "model.merges is empty: a BPE needs its merges");
  }
  if (typeof merges[0] === "string") return merges as string[];
  // transformers ≥ 4.45 writes pairs; a space inside a part is stored as U+0120+... as llama.cpp does.
  return (merges as unknown[]).map((pair) => {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw tokenizerError(dir, "tokenizer.json", `merge ${JSON.stringify(pair)} is not a pair`);
    }
    return (pair as string[])
      .map((part) =>
        [...String(part)]
          .map((char) => (char === " " ? String.fromCodePoint(" ".codePointAt(0)! + 256) : char))
          .join(""),
      )
      .join(" ");
  });
}

/** llama.cpp's does_token_look_special: added tokens that ought to be control tokens. */
function looksSpecial(token: string): boolean {
  return (
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(token) ||
    (token.startsWith("<|") && token.endsWith("|>")) ||
    (token.startsWith("<｜") && token.endsWith("｜>")) ||
    (token.startsWith("<unused") && token.endsWith(">"))
  );
}

/** Special token ids and add_*_token flags, in SpecialVocab's order of precedence. */
function specialTokens(
  tokenizerJson: Record<string, unknown> | undefined,
  tokenizerConfig: Record<string, unknown>,
  config: Record<string, unknown>,
  added: AddedToken[],
  vocabSize: number,
): GgufMetadata {
  const ids = new Map<string, number>();
  const addFlags = new Map<string, boolean>();
  const setId = (type: string, id: unknown): void => {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= vocabSize || ids.has(type)) return;
    ids.set(type, id);
  };
  if (tokenizerJson) {
    const content = (type: string): string | undefined => {
      const entry = tokenizerConfig[`${type}_token`];
      if (typeof entry === "string") return entry;
      if (
        typeof entry === "object" &&
        entry !== null &&
        typeof (entry as { content?: unknown }).content === "string"
      ) {
        return (entry as { content: string }).content;
      }
      return undefined;
    };
    // Crude reading of TemplateProcessing, as SpecialVocab does: a leading bos / trailing eos.
    const post = tokenizerJson.post_processor as
      | { type?: string; processors?: unknown[]; single?: unknown[] }
      | null
      | undefined;
    const processors = post ? (Array.isArray(post.processors) ? post.processors : [post]) : [];
    for (const processor of processors as {
      type?: string;
      single?: { SpecialToken?: { id?: string } }[];
    }[]) {
      if (
        processor.type !== "TemplateProcessing" ||
        !Array.isArray(processor.single) ||
        processor.single.length < 2
      )
        continue;
      const first = processor.single[0]?.SpecialToken?.id;
      const last = processor.single.at(-1)?.SpecialToken?.id;
      if (first !== undefined) addFlags.set("bos", first === content("bos"));
      if (last !== undefined) addFlags.set("eos", last === content("eos"));
    }
    for (const type of SPECIAL_TYPES) {
      const text = content(type);
      if (text === undefined) continue;
      setId(type, added.find((token) => token.content === text)?.id);
    }
  }
  for (const type of SPECIAL_TYPES) {
    const flag = tokenizerConfig[`add_${type}_token`];
    if (typeof flag === "boolean") addFlags.set(type, flag);
    setId(type, config[`${type}_token_id`]);
  }
  const metadata: GgufMetadata = new Map();
  for (const type of SPECIAL_TYPES) {
    const id = ids.get(type);
    if (id !== undefined) metadata.set(SPECIAL_ID_KEYS[type], gv.u32(id));
  }
  for (const type of ["bos", "eos", "sep"]) {
    const flag = addFlags.get(type);
    if (flag !== undefined) metadata.set(`tokenizer.ggml.add_${type}_token`, gv.bool(flag));
  }
  return metadata;
}

type ChatTemplate = string | { name: string; template: string }[] | undefined;

async function chatTemplate(dir: string, tokenizerConfig: Record<string, unknown>): Promise<ChatTemplate> {
  const fromConfig = tokenizerConfig.chat_template;
  if (typeof fromConfig === "string") return fromConfig;
  if (Array.isArray(fromConfig)) {
    return fromConfig
      .filter((entry) => typeof entry?.name === "string" && typeof entry?.template === "string")
      .map((entry: { name: string; template: string }) => ({ name: entry.name, template: entry.template }));
  }
  try {
    return await readFile(join(dir, "chat_template.jinja"), "utf8");
  } catch {
    // none
  }
  const json = (await readJsonFile(join(dir, "chat_template.json"))) as
    | { chat_template?: unknown }
    | undefined;
  return typeof json?.chat_template === "string" ? json.chat_template : undefined;
}
