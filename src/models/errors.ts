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
} as const;

export type ModelErrorCode = keyof typeof MODEL_ERROR_CODES;

export class ModelError extends Error {
  constructor(
    readonly code: ModelErrorCode,
    detail: string,
    readonly path?: string,
  ) {
    super(`${path ? `${path}: ` : ""}${MODEL_ERROR_CODES[code]}: ${detail}`);
    this.name = "ModelError";
  }
}
