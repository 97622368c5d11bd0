// Hugging Face checkpoint (config.json, safetensors, tokenizer files) → one GGUF file, streamed:
// at most one tensor (and usually one chunk of it) is in memory at a time. The file is written
// to a temp name beside `out` and renamed into place only when whole.
import { randomUUID } from "node:crypto";
import { rename, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { ModelError } from "../errors.js";
import {
  type GgufMetadata,
  type GgufTensorToWrite,
  gv,
  type WritableTensorType,
  writeGguf,
} from "../gguf.js";
import { type PlannedTensor, planArchitecture, SUPPORTED_ARCHITECTURES } from "./architectures.js";
import { type Checkpoint, openCheckpoint, readJsonFile, TensorReader } from "./safetensors.js";
import { tokenizerMetadata } from "./tokenizer.js";

export { SUPPORTED_ARCHITECTURES };
export type ConvertDtype = "f32" | "f16" | "q8_0";
export const CONVERT_DTYPES: readonly ConvertDtype[] = ["f32", "f16", "q8_0"];

export interface ConvertProgress {
  /** The GGUF tensor being written now, its index (0-based) and the tensor count. */
  tensor: string;
  tensorIndex: number;
  tensorCount: number;
  bytesWritten: number;
  totalBytes: number;
}

export interface ConvertOptions {
  dtype: ConvertDtype;
  onProgress?: (progress: ConvertProgress) => void;
  /** general.name; default: the checkpoint directory's name. */
  name?: string;
}

export interface ConvertResult {
  path: string;
  architecture: string;
  tensors: number;
  bytes: number;
}

// llama_ftype values for general.file_type.
const FILE_TYPE: Record<ConvertDtype, number> = { f32: 0, f16: 1, q8_0: 7 };
// Values per streamed chunk: 1 Mi values (4 MiB as float32).
const CHUNK_VALUES = 1 << 20;

/** The GGUF type llama.cpp's converter gives a tensor, so both converters write the same types. */
export function tensorType(name: string, shape: number[], dtype: ConvertDtype): WritableTensorType {
  if (shape.length <= 1 || name.endsWith("_norm.weight") || !name.endsWith(".weight")) return "f32";
  if (name === "position_embd.weight") return "f32";
  // Q8_0 needs whole 32-value blocks per row; llama.cpp falls back to f16 for other rows.
  if (dtype === "q8_0" && shape.at(-1)! % 32 !== 0) return "f16";
  return dtype;
}

export async function convertCheckpoint(
  dir: string,
  out: string,
  options: ConvertOptions,
): Promise<ConvertResult> {
  const checkpointDir = resolve(dir);
  const configPath = join(checkpointDir, "config.json");
  const config = await readJsonFile(configPath);
  if (config === undefined) {
    // A directory of only pickles deserves the pickle message even without config.json.
    await openCheckpoint(checkpointDir);
    throw new ModelError("BERTH_CHECKPOINT_CONFIG", "config.json is missing", configPath);
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ModelError("BERTH_CHECKPOINT_CONFIG", "config.json is not a JSON object", configPath);
  }
  const checkpoint = await openCheckpoint(checkpointDir);
  const plan = planArchitecture(checkpoint, config as Record<string, unknown>, configPath);

  const vocabSize = Number((config as { vocab_size?: unknown }).vocab_size);
  const [tokenizerJson, tokenizerConfig, generationConfig] = await Promise.all([
    readJsonFile(join(checkpointDir, "tokenizer.json")),
    readJsonFile(join(checkpointDir, "tokenizer_config.json")),
    readJsonFile(join(checkpointDir, "generation_config.json")),
  ]);
  const tokenizer = await tokenizerMetadata(checkpointDir, {
    ...(tokenizerJson ? { tokenizerJson: tokenizerJson as Record<string, unknown> } : {}),
    ...(tokenizerConfig ? { tokenizerConfig: tokenizerConfig as Record<string, unknown> } : {}),
    vocabSize,
    config: config as Record<string, unknown>,
  });

  const metadata: GgufMetadata = new Map();
  metadata.set("general.architecture", gv.str(plan.architecture));
  metadata.set("general.type", gv.str("model"));
  metadata.set("general.name", gv.str(options.name ?? basename(checkpointDir)));
  for (const [key, value] of plan.metadata) metadata.set(key, value);
  metadata.set("general.file_type", gv.u32(FILE_TYPE[options.dtype]));
  metadata.set("general.quantization_version", gv.u32(2));
  for (const [key, value] of tokenizer) metadata.set(key, value);
  // Llama's converter records the tokenizer's add_prefix_space (llama.cpp reads it for BPE too).
  if (
    plan.architecture === "llama" &&
    typeof (tokenizerConfig as { add_prefix_space?: unknown })?.add_prefix_space === "boolean"
  ) {
    metadata.set(
      "tokenizer.ggml.add_space_prefix",
      gv.bool((tokenizerConfig as { add_prefix_space: boolean }).add_prefix_space),
    );
  }
  for (const [key, value] of generationDefaults(generationConfig)) metadata.set(key, value);

  const reader = new TensorReader();
  const tensors: GgufTensorToWrite[] = plan.tensors.map((planned) => ({
    name: planned.name,
    ne: [...planned.shape].reverse(),
    type: tensorType(planned.name, planned.shape, options.dtype),
    values: () => tensorValues(reader, planned),
  }));

  const target = resolve(out);
  const temp = join(dirname(target), `.${basename(target)}.${randomUUID()}.tmp`);
  const starts = startsOf(tensors);
  let tensorIndex = 0;
  try {
    const { bytes } = await writeGguf(temp, { metadata, tensors }, ({ bytesWritten, totalBytes }) => {
      while (
        tensorIndex + 1 < starts.length &&
        bytesWritten > starts[tensorIndex + 1]! + starts.headerBytes(totalBytes)
      ) {
        tensorIndex++;
      }
      options.onProgress?.({
        tensor: tensors[tensorIndex]?.name ?? "",
        tensorIndex,
        tensorCount: tensors.length,
        bytesWritten,
        totalBytes,
      });
    });
    await rename(temp, target);
    return { path: target, architecture: plan.architecture, tensors: tensors.length, bytes };
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  } finally {
    await reader.close();
  }
}

async function* tensorValues(reader: TensorReader, planned: PlannedTensor): AsyncGenerator<Float32Array> {
  if (planned.values) {
    yield planned.values;
    return;
  }
  const source = planned.source!;
  if (planned.transform) {
    yield planned.transform(await reader.readAll(source));
    return;
  }
  // Whole rows per chunk, so a q8_0 chunk is whole 32-value blocks.
  const rowLength = planned.shape.at(-1) ?? 1;
  const chunkValues = Math.max(1, Math.floor(CHUNK_VALUES / rowLength)) * rowLength;
  yield* reader.chunks(source, chunkValues);
}

/** Byte offsets where each tensor's data starts, relative to the data section, for progress. */
function startsOf(tensors: GgufTensorToWrite[]): number[] & { headerBytes: (total: number) => number } {
  const bytesPer: Record<WritableTensorType, number> = { f32: 4, f16: 2, q8_0: 34 / 32 };
  const starts: number[] = [];
  let cursor = 0;
  for (const tensor of tensors) {
    starts.push(cursor);
    const count = tensor.ne.reduce((product, dim) => product * dim, 1);
    cursor = Math.ceil((cursor + count * bytesPer[tensor.type]) / 32) * 32;
  }
  const dataBytes = cursor;
  return Object.assign(starts, { headerBytes: (total: number) => total - dataBytes });
}

/** generation_config.json defaults that GGUF has keys for (general.sampling.*, as gguf-py's Metadata reads them). */
function generationDefaults(generationConfig: unknown): GgufMetadata {
  const metadata: GgufMetadata = new Map();
  if (typeof generationConfig !== "object" || generationConfig === null) return metadata;
  const config = generationConfig as Record<string, unknown>;
  if (typeof config.top_k === "number" && Number.isInteger(config.top_k) && config.top_k >= 0) {
    metadata.set("general.sampling.top_k", gv.i32(config.top_k));
  }
  if (typeof config.top_p === "number") metadata.set("general.sampling.top_p", gv.f32(config.top_p));
  if (typeof config.temperature === "number")
    metadata.set("general.sampling.temp", gv.f32(config.temperature));
  if (typeof config.min_p === "number") metadata.set("general.sampling.min_p", gv.f32(config.min_p));
  if (typeof config.repetition_penalty === "number") {
    metadata.set("general.sampling.penalty_repeat", gv.f32(config.repetition_penalty));
  }
  return metadata;
}

export type { Checkpoint };
