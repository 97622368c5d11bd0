// Errors of the models boundary: reading, writing and checking model files.
// Callers and tests match on `code`, never on the message text.

export const MODEL_ERROR_CODES = {
  BERTH_MODEL_NOT_GGUF: "the file is not a GGUF model",
  BERTH_MODEL_TRUNCATED: "the GGUF file ends before its declared contents",
  BERTH_MODEL_CORRUPT: "the GGUF file has an invalid structure",
  BERTH_MODEL_UNSUPPORTED_VERSION: "the GGUF version is not supported",
  BERTH_MODEL_UNSUPPORTED_ARCH: "llama.cpp cannot run this model architecture",
  BERTH_MODEL_UNSUPPORTED_TYPE: "the tensor data type is not supported here",
  BERTH_MODEL_INVALID: "the model description is invalid",
  BERTH_MODEL_NOT_FOUND: "the model file does not exist",
  BERTH_MODEL_UNREADABLE: "the model file cannot be read",
  // Converting a Hugging Face checkpoint (src/models/convert): the path is the checkpoint file.
  BERTH_CHECKPOINT_NOT_FOUND: "the checkpoint has no safetensors weights",
  BERTH_CHECKPOINT_PICKLE: "the checkpoint is a pickle, which can run arbitrary code when loaded",
  BERTH_CHECKPOINT_CORRUPT: "the checkpoint file is invalid",
  BERTH_CHECKPOINT_TRUNCATED: "the checkpoint file ends before its declared contents",
  BERTH_CHECKPOINT_DTYPE: "the checkpoint tensor has a data type the converter does not read",
  BERTH_CHECKPOINT_MISSING_TENSOR: "the checkpoint lacks a tensor the architecture needs",
  BERTH_CHECKPOINT_UNEXPECTED_TENSOR: "the checkpoint has a tensor the architecture does not use",
  BERTH_CHECKPOINT_SHAPE: "the checkpoint tensor has the wrong shape",
  BERTH_CHECKPOINT_CONFIG: "the checkpoint configuration is invalid",
  BERTH_CHECKPOINT_ARCH: "the converter does not support this architecture",
  BERTH_CHECKPOINT_TOKENIZER: "the checkpoint tokenizer cannot be converted",
} as const;

export type ModelErrorCode = keyof typeof MODEL_ERROR_CODES;

export class ModelError extends Error {
  constructor(
    readonly code: ModelErrorCode,
    detail: string,
    readonly path?: string,
  ) {
    super(`${path ? `${oneLine(path)}: ` : ""}${MODEL_ERROR_CODES[code]}: ${oneLine(detail)}`);
    this.name = "ModelError";
  }
}

const MAX_DETAIL_CHARS = 400;

/**
 * Names and keys come from the file itself: escape control characters and cap the length, so a
 * hostile file still gives one readable line.
 */
function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping them is the point
  const escaped = text.replace(/[\u0000-\u001f\u007f]/g, (char) => JSON.stringify(char).slice(1, -1));
  return escaped.length > MAX_DETAIL_CHARS ? `${escaped.slice(0, MAX_DETAIL_CHARS)}…` : escaped;
}

// Errors of model sources and the store (parsing a source URI, fetching, caching). A separate
// class from ModelError because the subject is a source URI, not a file; same rule: match on code.
export const MODEL_SOURCE_ERROR_CODES = {
  BERTH_MODEL_SOURCE: "the model source is invalid",
  BERTH_MODEL_SOURCE_NOT_FOUND: "the model source does not exist",
  BERTH_MODEL_SOURCE_UNAUTHORIZED: "the model source needs credentials",
  BERTH_MODEL_SOURCE_UNREACHABLE: "the model source cannot be reached",
  BERTH_MODEL_SOURCE_AMBIGUOUS: "the model source names no single file",
  BERTH_MODEL_NOT_CACHED: "the model is not cached",
  BERTH_MODEL_DOWNLOAD_FAILED: "the download failed",
  BERTH_MODEL_INTEGRITY: "the downloaded bytes are not the ones the source promised",
  BERTH_MODEL_CACHE_WRITE: "the model cache cannot be written",
  BERTH_MODEL_NEEDS_CONVERSION: "the source holds no GGUF file",
} as const;

export type ModelSourceErrorCode = keyof typeof MODEL_SOURCE_ERROR_CODES;

export class ModelSourceError extends Error {
  readonly code: ModelSourceErrorCode;
  /** The message names the source (or the part of it that is wrong) and what happened. */
  constructor(code: ModelSourceErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = "ModelSourceError";
  }
}

/**
 * Whether a model failure is the user's input (exit code 2: a malformed source URI, a file the
 * model check refuses) rather than the world's (exit 1: network, credentials, cache disk, a
 * source that is not there). One rule for `serve`, `up`, `apply` and `model pull`.
 */
export function isModelInputFailure(code: string): boolean {
  return (
    code === "BERTH_MODEL_SOURCE" ||
    (Object.hasOwn(MODEL_ERROR_CODES, code) && code !== "BERTH_MODEL_UNREADABLE")
  );
}
