// Small valid GGUF models for tests of the model check: the tiny GPT-2 model cut to a 256-token
// vocabulary, so a test can write dozens of variants in milliseconds.
import { type GgufToWrite, gv } from "../../src/models/gguf.js";
import { describeTinyModel } from "../../src/models/tiny.js";

export const SMALL_VOCABULARY = 256;

/** The tiny model cut to GPT-2's first 256 tokens: a valid model that writes in milliseconds. */
export function smallVocabularyModel(): GgufToWrite {
  const model = describeTinyModel();
  const cut = (key: string, count: number): void => {
    const value = model.metadata.get(key);
    if (value?.type !== "array") throw new Error(`${key} is not an array`);
    model.metadata.set(key, { ...value, value: value.value.slice(0, count) } as typeof value);
  };
  cut("tokenizer.ggml.tokens", SMALL_VOCABULARY);
  cut("tokenizer.ggml.token_type", SMALL_VOCABULARY);
  cut("tokenizer.ggml.merges", 10);
  for (const key of ["bos_token_id", "eos_token_id", "unknown_token_id"]) {
    model.metadata.set(`tokenizer.ggml.${key}`, gv.u32(SMALL_VOCABULARY - 1));
  }
  const embedding = model.tensors.find((tensor) => tensor.name === "token_embd.weight")!;
  embedding.ne = [embedding.ne[0]!, SMALL_VOCABULARY];
  embedding.values = new Float32Array(embedding.ne[0]! * SMALL_VOCABULARY);
  return model;
}
