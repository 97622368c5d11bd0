// THE model check: everything Berth can verify about a GGUF file before an engine loads it, so a
// broken file is refused with one line naming it and what is wrong instead of a crash loop.
import { stat } from "node:fs/promises";
import { NON_GENERATIVE_ARCHITECTURES } from "./architectures.js";
import { ModelError } from "./errors.js";
import { alignUp, type GgufFile, type GgufTensorInfo, metadataString, readGguf } from "./gguf.js";
import { assertRunnableArchitecture, type ModelSummary, summarizeGguf } from "./inspect.js";

export type { ModelSummary } from "./inspect.js";

/**
 * Checks a model file the way llama.cpp will read it, without loading the tensor data:
 * - the header: magic, version (2 or 3, little-endian), counts that fit the file;
 * - metadata: no duplicate or empty keys, no nested arrays, the hyperparameters and tokenizer
 *   llama.cpp requires, with the right types;
 * - tensors: unique names llama.cpp accepts, laid out back to back as gguf.cpp demands, every
 *   tensor's data inside the file, no layers beyond `block_count`, the token embedding shaped
 *   [embedding, vocabulary] (and, for gpt2, every tensor llama.cpp creates, with its shape);
 * - the architecture: one the bundled llama.cpp runs, and a text-generation one.
 * Throws ModelError (code per problem; message `PATH: what: detail`, one line).
 */
export async function checkModelFile(path: string): Promise<ModelSummary> {
  await checkReadableFile(path);
  let file: GgufFile;
  try {
    file = await readGguf(path);
  } catch (error) {
    throw asModelError(error, path);
  }
  checkModelStructure(file);
  return summarizeGguf(file);
}

/** The checks on an already-parsed file (pure: no I/O). Throws ModelError. */
export function checkModelStructure(file: GgufFile): void {
  checkMetadataShape(file);
  checkTensorLayout(file);
  assertRunnableArchitecture(file);
  const architecture = metadataString(file.metadata, "general.architecture") ?? "";
  if (NON_GENERATIVE_ARCHITECTURES.has(architecture)) {
    throw new ModelError(
      "BERTH_MODEL_UNSUPPORTED_ARCH",
      `"${architecture}" is an embedding/encoder model; Berth serves text generation`,
      file.path,
    );
  }
  const hyper = checkHyperparameters(file, architecture);
  const vocabSize = checkTokenizer(file);
  checkTensors(file, architecture, hyper, vocabSize);
}

async function checkReadableFile(path: string): Promise<void> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    throw asModelError(error, path);
  }
  if (info.isDirectory()) throw new ModelError("BERTH_MODEL_NOT_GGUF", "it is a directory", path);
  if (!info.isFile()) throw new ModelError("BERTH_MODEL_NOT_GGUF", "it is not a regular file", path);
}

/** Any failure of reading becomes a ModelError with a code: callers never see a raw fs/Buffer error. */
function asModelError(error: unknown, path: string): ModelError {
  if (error instanceof ModelError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT" || code === "ENOTDIR")
    return new ModelError("BERTH_MODEL_NOT_FOUND", "no such file", path);
  if (code === "EACCES" || code === "EPERM") {
    return new ModelError("BERTH_MODEL_UNREADABLE", "permission denied", path);
  }
  if (code === "EISDIR") return new ModelError("BERTH_MODEL_NOT_GGUF", "it is a directory", path);
  if (typeof code === "string") {
    return new ModelError("BERTH_MODEL_UNREADABLE", `${code} while reading`, path);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ModelError("BERTH_MODEL_CORRUPT", `unreadable structure (${message})`, path);
}

// llama.cpp's GGML_MAX_NAME: a tensor name must be shorter.
const GGML_MAX_NAME = 64;

function checkMetadataShape(file: GgufFile): void {
  for (const [key, value] of file.metadata) {
    if (key.length === 0) throw new ModelError("BERTH_MODEL_CORRUPT", "a metadata key is empty", file.path);
    // llama.cpp copies keys as C strings: one with a NUL byte becomes another (or empty) key there,
    // and an empty one aborts the process (GGML_ASSERT in gguf.cpp, found by fuzzing).
    if (key.includes("\u0000")) {
      throw new ModelError("BERTH_MODEL_CORRUPT", `metadata key "${key}" contains a NUL byte`, file.path);
    }
    if (value.type === "array" && value.itemType === "array") {
      throw new ModelError(
        "BERTH_MODEL_CORRUPT",
        `metadata "${key}" is an array of arrays, which llama.cpp cannot read`,
        file.path,
      );
    }
  }
}

/** gguf.cpp requires unique, short names and tensors stored back to back in declaration order. */
function checkTensorLayout(file: GgufFile): void {
  const names = new Set<string>();
  let expectedOffset = 0;
  for (const tensor of file.tensors) {
    if (tensor.name.includes("\u0000")) {
      throw new ModelError(
        "BERTH_MODEL_CORRUPT",
        `tensor name "${tensor.name}" contains a NUL byte`,
        file.path,
      );
    }
    if (tensor.name.length === 0 || Buffer.byteLength(tensor.name) >= GGML_MAX_NAME) {
      throw new ModelError(
        "BERTH_MODEL_CORRUPT",
        `tensor name "${tensor.name}" must have 1 to ${GGML_MAX_NAME - 1} bytes`,
        file.path,
      );
    }
    if (names.has(tensor.name)) {
      throw new ModelError("BERTH_MODEL_CORRUPT", `tensor "${tensor.name}" appears twice`, file.path);
    }
    names.add(tensor.name);
    if (!Number.isSafeInteger(tensor.byteSize)) {
      throw new ModelError(
        "BERTH_MODEL_CORRUPT",
        `tensor "${tensor.name}" of shape [${tensor.ne.join(", ")}] is larger than any file`,
        file.path,
      );
    }
    if (tensor.offset !== expectedOffset) {
      throw new ModelError(
        "BERTH_MODEL_CORRUPT",
        `tensor "${tensor.name}" data starts at offset ${tensor.offset}, expected ${expectedOffset} (tensors overlap or leave gaps)`,
        file.path,
      );
    }
    expectedOffset = alignUp(expectedOffset + tensor.byteSize, file.alignment);
  }
  // readGguf already checks the data of each tensor ends inside the file; checked again here so
  // the guarantee stands in this file.
  for (const tensor of file.tensors) {
    const end = file.dataOffset + tensor.offset + tensor.byteSize;
    if (end > file.fileSize) {
      throw new ModelError(
        "BERTH_MODEL_TRUNCATED",
        `tensor "${tensor.name}" data ends at byte ${end} but the file has ${file.fileSize} bytes`,
        file.path,
      );
    }
  }
}

interface Hyperparameters {
  contextLength: number;
  embedding: number;
  layers: number;
  heads?: number;
  headsKv?: number;
  feedForward?: number;
}

const INTEGER_TYPES = new Set(["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]);

/** A required (or optional) non-negative integer key; arrays (per-layer values) give their first item. */
function integerKey(file: GgufFile, key: string, required: boolean, minimum: number): number | undefined {
  const value = file.metadata.get(key);
  if (value === undefined) {
    if (required) throw new ModelError("BERTH_MODEL_INVALID", `metadata "${key}" is missing`, file.path);
    return undefined;
  }
  let number: number | undefined;
  if (value.type === "array") {
    if (INTEGER_TYPES.has(value.itemType) && value.value.length > 0) number = Number(value.value[0]);
  } else if (INTEGER_TYPES.has(value.type)) {
    number = Number(value.value);
  }
  if (number === undefined) {
    throw new ModelError(
      "BERTH_MODEL_INVALID",
      `metadata "${key}" must be an integer, not ${value.type === "array" ? `an array of ${value.itemType}` : `a ${value.type}`}`,
      file.path,
    );
  }
  if (number < minimum || !Number.isSafeInteger(number)) {
    throw new ModelError(
      "BERTH_MODEL_INVALID",
      `metadata "${key}" is ${number}, must be at least ${minimum}`,
      file.path,
    );
  }
  return number;
}

function checkHyperparameters(file: GgufFile, architecture: string): Hyperparameters {
  const key = (suffix: string): string => `${architecture}.${suffix}`;
  const hyper: Hyperparameters = {
    contextLength: integerKey(file, key("context_length"), true, 1)!,
    embedding: integerKey(file, key("embedding_length"), true, 1)!,
    layers: integerKey(file, key("block_count"), true, 1)!,
  };
  const heads = integerKey(file, key("attention.head_count"), architecture === "gpt2", 1);
  if (heads !== undefined) hyper.heads = heads;
  const headsKv = integerKey(file, key("attention.head_count_kv"), false, 1);
  if (headsKv !== undefined) hyper.headsKv = headsKv;
  const feedForward = integerKey(file, key("feed_forward_length"), architecture === "gpt2", 1);
  if (feedForward !== undefined) hyper.feedForward = feedForward;
  if (hyper.heads !== undefined && hyper.embedding % hyper.heads !== 0) {
    throw new ModelError(
      "BERTH_MODEL_INVALID",
      `${key("embedding_length")} ${hyper.embedding} is not a multiple of ${key("attention.head_count")} ${hyper.heads}`,
      file.path,
    );
  }
  if (architecture === "gpt2") {
    const epsilon = file.metadata.get(key("attention.layer_norm_epsilon"));
    if (epsilon === undefined || (epsilon.type !== "float32" && epsilon.type !== "float64")) {
      throw new ModelError(
        "BERTH_MODEL_INVALID",
        `metadata "${key("attention.layer_norm_epsilon")}" must be a float`,
        file.path,
      );
    }
  }
  return hyper;
}

/** Tokenizer models llama.cpp's vocabulary loader knows (llama-vocab.cpp). */
const TOKENIZER_MODELS = new Set([
  "no_vocab",
  "none",
  "llama",
  "bert",
  "gpt2",
  "hybriddna",
  "whitespace",
  "t5",
  "rwkv",
  "plamo2",
  "gemma4",
]);
/** Tokenizer models that read BPE merges and a pre-tokenizer name. */
const BPE_TOKENIZER_MODELS = new Set(["gpt2", "hybriddna", "whitespace"]);

/** Pre-tokenizer names llama.cpp accepts for BPE vocabularies (llama-vocab.cpp); others throw there. */
export const LLAMA_CPP_PRE_TOKENIZERS: ReadonlySet<string> = new Set(
  (
    "default minicpm5 llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano " +
    "deepseek-llm deepseek-coder deepseek-v3 youtu falcon mpt starcoder gpt-2 phi-2 jina-es jina-de " +
    "gigachat jina-v2-es jina-v2-de a.x-4.0 mellum modern-bert jais-2 gemma4 granite-embed-multi-311m " +
    "sarvam-moe jina-v1-en jina-v2-code roberta-bpe whitespace refact command-r qwen2 deepseek-r1-qwen " +
    "kormo f2llmv2 qwen35 stablelm2 olmo dbrx smaug-bpe poro-chat glm4 chatglm-bpe viking jais tekken " +
    "smollm codeshell bloom gpt3-finnish exaone exaone4 exaone-moe chameleon minerva-7b megrez gpt-4o " +
    "llama4 kanana2 talkie granite-embed-multi-97m tiny_aya cohere2moe superbpe trillion granite-docling " +
    "bailingmoe bailingmoe2 llada-moe seed-coder hunyuan hunyuan-dense joyai-llm kimi-k2 grok-2 afmoe " +
    "laguna minimax-m2 solar-open mellum2"
  ).split(" "),
);

/** Checks the tokenizer metadata llama.cpp reads; returns the vocabulary size (undefined: none). */
function checkTokenizer(file: GgufFile): number | undefined {
  const model = file.metadata.get("tokenizer.ggml.model");
  if (model === undefined) {
    throw new ModelError("BERTH_MODEL_INVALID", `metadata "tokenizer.ggml.model" is missing`, file.path);
  }
  if (model.type !== "string") {
    throw new ModelError(
      "BERTH_MODEL_INVALID",
      `metadata "tokenizer.ggml.model" must be a string`,
      file.path,
    );
  }
  if (!TOKENIZER_MODELS.has(model.value)) {
    throw new ModelError(
      "BERTH_MODEL_INVALID",
      `tokenizer model "${model.value}" is not one llama.cpp knows`,
      file.path,
    );
  }
  if (model.value === "none" || model.value === "no_vocab") return undefined;

  const stringArray = (key: string, required: boolean): number | undefined => {
    const value = file.metadata.get(key);
    if (value === undefined) {
      if (required) throw new ModelError("BERTH_MODEL_INVALID", `metadata "${key}" is missing`, file.path);
      return undefined;
    }
    if (value.type !== "array" || value.itemType !== "string") {
      throw new ModelError("BERTH_MODEL_INVALID", `metadata "${key}" must be an array of strings`, file.path);
    }
    return value.value.length;
  };
  const vocabSize = stringArray("tokenizer.ggml.tokens", true)!;
  if (vocabSize === 0) {
    throw new ModelError("BERTH_MODEL_INVALID", `metadata "tokenizer.ggml.tokens" is empty`, file.path);
  }
  // Per-token arrays llama.cpp reads by token id (llama-vocab.cpp): the types it accepts, at least
  // one item per token.
  const perToken: Array<[string, string[]]> = [
    ["tokenizer.ggml.token_type", ["int32"]],
    ["tokenizer.ggml.scores", ["float32", "int32"]],
  ];
  for (const [key, itemTypes] of perToken) {
    const value = file.metadata.get(key);
    if (value === undefined) continue;
    if (value.type !== "array" || !itemTypes.includes(value.itemType) || value.value.length < vocabSize) {
      throw new ModelError(
        "BERTH_MODEL_INVALID",
        `metadata "${key}" must be an array of ${itemTypes.join(" or ")} with one item per token (${vocabSize})`,
        file.path,
      );
    }
  }
  checkUniqueTokens(file);
  if (BPE_TOKENIZER_MODELS.has(model.value)) {
    stringArray("tokenizer.ggml.merges", true);
    const pre = file.metadata.get("tokenizer.ggml.pre");
    if (pre !== undefined) {
      if (pre.type !== "string") {
        throw new ModelError(
          "BERTH_MODEL_INVALID",
          `metadata "tokenizer.ggml.pre" must be a string`,
          file.path,
        );
      }
      if (pre.value !== "" && !LLAMA_CPP_PRE_TOKENIZERS.has(pre.value)) {
        throw new ModelError(
          "BERTH_MODEL_INVALID",
          `pre-tokenizer "${pre.value}" is not one llama.cpp knows`,
          file.path,
        );
      }
    }
  }
  return vocabSize;
}

/**
 * llama.cpp maps token text to id and asserts the map is as large as the vocabulary: a token text
 * that appears twice aborts the whole process (GGML_ASSERT in llama-vocab.cpp, found by fuzzing).
 * Tokens are compared as llama.cpp reads them: up to a NUL byte, an empty one as "[EMPTY_<id>]".
 */
function checkUniqueTokens(file: GgufFile): void {
  const tokens = file.metadata.get("tokenizer.ggml.tokens");
  if (tokens?.type !== "array" || tokens.itemType !== "string") return;
  const firstId = new Map<string, number>();
  for (const [id, token] of tokens.value.entries()) {
    // llama.cpp reads each token as a C string: the text ends at a NUL byte.
    const cText = token.split("\u0000", 1)[0] ?? "";
    const text = cText === "" ? `[EMPTY_${id}]` : cText;
    const first = firstId.get(text);
    if (first !== undefined) {
      throw new ModelError(
        "BERTH_MODEL_INVALID",
        `token ${JSON.stringify(text)} appears twice in tokenizer.ggml.tokens (ids ${first} and ${id}); llama.cpp aborts on such a vocabulary`,
        file.path,
      );
    }
    firstId.set(text, id);
  }
}

function checkTensors(
  file: GgufFile,
  architecture: string,
  hyper: Hyperparameters,
  vocabSize: number | undefined,
): void {
  const byName = new Map(file.tensors.map((tensor) => [tensor.name, tensor]));
  const layerPattern = /^blk\.(\d+)\./;
  const layersSeen = new Set<number>();
  for (const tensor of file.tensors) {
    const layer = layerPattern.exec(tensor.name)?.[1];
    if (layer === undefined) continue;
    const index = Number(layer);
    if (index >= hyper.layers) {
      throw new ModelError(
        "BERTH_MODEL_INVALID",
        `tensor "${tensor.name}" is beyond the ${hyper.layers} layers of ${architecture}.block_count`,
        file.path,
      );
    }
    layersSeen.add(index);
  }
  for (let layer = 0; layer < hyper.layers; layer++) {
    if (!layersSeen.has(layer)) {
      throw new ModelError(
        "BERTH_MODEL_INVALID",
        `layer ${layer} has no tensors (${architecture}.block_count is ${hyper.layers})`,
        file.path,
      );
    }
  }

  const expectShape = (name: string, shape: number[], required = true): void => {
    const tensor = byName.get(name);
    if (tensor === undefined) {
      if (required) throw new ModelError("BERTH_MODEL_INVALID", `tensor "${name}" is missing`, file.path);
      return;
    }
    if (!sameShape(tensor, shape)) {
      throw new ModelError(
        "BERTH_MODEL_INVALID",
        `tensor "${name}" has shape [${tensor.ne.join(", ")}], expected [${shape.join(", ")}]`,
        file.path,
      );
    }
  };
  // Every text-generation architecture llama.cpp runs embeds tokens through token_embd.
  const tokenEmbedding = byName.get("token_embd.weight");
  if (tokenEmbedding === undefined) {
    throw new ModelError("BERTH_MODEL_INVALID", `tensor "token_embd.weight" is missing`, file.path);
  }
  if (
    tokenEmbedding.ne[0] !== hyper.embedding ||
    (vocabSize !== undefined && tokenEmbedding.ne[1] !== vocabSize)
  ) {
    throw new ModelError(
      "BERTH_MODEL_INVALID",
      `tensor "token_embd.weight" has shape [${tokenEmbedding.ne.join(", ")}], expected [${hyper.embedding}, ${vocabSize ?? "vocabulary"}]`,
      file.path,
    );
  }

  if (architecture !== "gpt2") return;
  // gpt2 (llama.cpp src/models/gpt2.cpp): exactly these tensors, output.weight optional.
  const width = hyper.embedding;
  const feedForward = hyper.feedForward!;
  // Grouped-query attention narrows K and V to head_count_kv heads.
  const kvWidth = (width / hyper.heads!) * (hyper.headsKv ?? hyper.heads!);
  const expected: Array<[string, number[]]> = [
    ["token_embd.weight", [width, vocabSize ?? tokenEmbedding.ne[1]!]],
    ["position_embd.weight", [width, hyper.contextLength]],
    ["output_norm.weight", [width]],
    ["output_norm.bias", [width]],
  ];
  for (let layer = 0; layer < hyper.layers; layer++) {
    const block = `blk.${layer}`;
    expected.push(
      [`${block}.attn_norm.weight`, [width]],
      [`${block}.attn_norm.bias`, [width]],
      [`${block}.attn_qkv.weight`, [width, width + 2 * kvWidth]],
      [`${block}.attn_qkv.bias`, [width + 2 * kvWidth]],
      [`${block}.attn_output.weight`, [width, width]],
      [`${block}.attn_output.bias`, [width]],
      [`${block}.ffn_norm.weight`, [width]],
      [`${block}.ffn_norm.bias`, [width]],
      [`${block}.ffn_up.weight`, [width, feedForward]],
      [`${block}.ffn_up.bias`, [feedForward]],
      [`${block}.ffn_down.weight`, [feedForward, width]],
      [`${block}.ffn_down.bias`, [width]],
    );
  }
  for (const [name, shape] of expected) expectShape(name, shape);
  expectShape("output.weight", [width, vocabSize ?? tokenEmbedding.ne[1]!], false);
  const known = new Set([...expected.map(([name]) => name), "output.weight"]);
  for (const tensor of file.tensors) {
    if (!known.has(tensor.name)) {
      throw new ModelError(
        "BERTH_MODEL_INVALID",
        `tensor "${tensor.name}" is not part of a gpt2 model (llama.cpp refuses extra tensors)`,
        file.path,
      );
    }
  }
}

/** Shapes match up to trailing 1s (ggml pads every tensor to 4 dimensions with 1s). */
function sameShape(tensor: GgufTensorInfo, shape: number[]): boolean {
  const length = Math.max(tensor.ne.length, shape.length);
  for (let dim = 0; dim < length; dim++) {
    if ((tensor.ne[dim] ?? 1) !== (shape[dim] ?? 1)) return false;
  }
  return true;
}
