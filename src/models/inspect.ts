// What a GGUF model is, from its header alone: architecture, shape, parameters, types, tokenizer.
// inspectModel() also refuses architectures the bundled llama.cpp cannot run.
import { isRunnableArchitecture, NON_GENERATIVE_ARCHITECTURES } from "./architectures.js";
import { ModelError } from "./errors.js";
import { type GgufFile, metadataNumber, metadataString, readGguf } from "./gguf.js";
import { LLAMA_FILE_TYPES } from "./tensor-types.js";

export interface ModelSummary {
  path: string;
  fileSizeBytes: number;
  ggufVersion: number;
  architecture: string;
  name?: string;
  /** False for embedding/encoder-only architectures. */
  generative: boolean;
  layers?: number;
  embedding?: number;
  heads?: number;
  headsKv?: number;
  feedForward?: number;
  contextLength?: number;
  vocabSize?: number;
  tokenizerModel?: string;
  tokenizerPre?: string;
  hasChatTemplate: boolean;
  parameterCount: number;
  /** llama.cpp's file type name (F16, Q8_0, ...), or the dominant matrix type when unset. */
  fileType: string;
  /** Tensor count per ggml type. */
  tensorTypes: Record<string, number>;
  tensorCount: number;
}

/** Summarizes a parsed GGUF file (pure: no I/O). */
export function summarizeGguf(file: GgufFile): ModelSummary {
  const { metadata } = file;
  const architecture = metadataString(metadata, "general.architecture") ?? "";
  const key = (suffix: string): number | undefined => metadataNumber(metadata, `${architecture}.${suffix}`);
  const tokens = metadata.get("tokenizer.ggml.tokens");
  const vocabSize = tokens?.type === "array" ? tokens.value.length : key("vocab_size");

  const tensorTypes: Record<string, number> = {};
  const matrixTypeCounts = new Map<string, number>();
  let parameterCount = 0;
  for (const tensor of file.tensors) {
    tensorTypes[tensor.typeName] = (tensorTypes[tensor.typeName] ?? 0) + 1;
    if (tensor.ne.length >= 2) {
      matrixTypeCounts.set(tensor.typeName, (matrixTypeCounts.get(tensor.typeName) ?? 0) + 1);
    }
    parameterCount += tensor.elementCount;
  }
  const fileTypeCode = metadataNumber(metadata, "general.file_type");
  const dominantMatrixType = [...matrixTypeCounts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  const fileType =
    fileTypeCode !== undefined
      ? (LLAMA_FILE_TYPES[fileTypeCode] ?? `file type ${fileTypeCode}`)
      : (dominantMatrixType?.toUpperCase() ?? "unknown");

  const headsValue = metadata.get(`${architecture}.attention.head_count`);
  // Some architectures store per-layer head counts as an array; report the first layer's.
  const firstOf = (value: typeof headsValue): number | undefined =>
    value?.type === "array" && typeof value.value[0] === "number" ? value.value[0] : undefined;
  const heads = firstOf(headsValue) ?? key("attention.head_count");
  const headsKv =
    firstOf(metadata.get(`${architecture}.attention.head_count_kv`)) ?? key("attention.head_count_kv");

  const summary: ModelSummary = {
    path: file.path,
    fileSizeBytes: file.fileSize,
    ggufVersion: file.version,
    architecture,
    generative: !NON_GENERATIVE_ARCHITECTURES.has(architecture),
    hasChatTemplate: metadata.has("tokenizer.chat_template"),
    parameterCount,
    fileType,
    tensorTypes,
    tensorCount: file.tensors.length,
  };
  const optional: Partial<ModelSummary> = {
    name: metadataString(metadata, "general.name"),
    layers: key("block_count"),
    embedding: key("embedding_length"),
    heads,
    headsKv,
    feedForward: firstOf(metadata.get(`${architecture}.feed_forward_length`)) ?? key("feed_forward_length"),
    contextLength: key("context_length"),
    vocabSize,
    tokenizerModel: metadataString(metadata, "tokenizer.ggml.model"),
    tokenizerPre: metadataString(metadata, "tokenizer.ggml.pre"),
  };
  for (const [field, value] of Object.entries(optional)) {
    if (value !== undefined) (summary as unknown as Record<string, unknown>)[field] = value;
  }
  return summary;
}

/** Throws BERTH_MODEL_UNSUPPORTED_ARCH unless llama.cpp knows the file's architecture. */
export function assertRunnableArchitecture(file: GgufFile): void {
  const architecture = metadataString(file.metadata, "general.architecture");
  if (architecture === undefined) {
    throw new ModelError("BERTH_MODEL_UNSUPPORTED_ARCH", "general.architecture is missing", file.path);
  }
  if (!isRunnableArchitecture(architecture)) {
    throw new ModelError(
      "BERTH_MODEL_UNSUPPORTED_ARCH",
      `"${architecture}" is not an architecture the bundled llama.cpp knows`,
      file.path,
    );
  }
}

/** Reads a model file's header and summarizes it; rejects files llama.cpp could not run. */
export async function inspectModel(path: string): Promise<ModelSummary> {
  const file = await readGguf(path);
  assertRunnableArchitecture(file);
  return summarizeGguf(file);
}
