// checkModelFile: the tiny models pass; every way a file can be broken gives a ModelError with a
// stable code and one line naming the file (random bytes, cut off, wrong version, layouts
// llama.cpp refuses, missing tokenizer or tensors, wrong shapes, unknown architectures).
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SMALL_VOCABULARY, smallVocabularyModel } from "../../test/support/gguf-models.js";
import { checkModelFile } from "./check.js";
import { ModelError, type ModelErrorCode } from "./errors.js";
import { type GgufToWrite, gv, writeGguf } from "./gguf.js";
import { ensureTinyModel } from "./tiny.js";

const directory = mkdtempSync(join(tmpdir(), "berth-check-"));
let tinyPath = "";
let tinyBytes: Buffer;

beforeAll(async () => {
  tinyPath = await ensureTinyModel({ home: join(directory, "home") });
  tinyBytes = readFileSync(tinyPath);
}, 120_000);
afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function expectCheckError(path: string, code: ModelErrorCode): Promise<ModelError> {
  const error = await checkModelFile(path).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ModelError);
  expect((error as ModelError).code).toBe(code);
  const message = (error as ModelError).message;
  expect(message.startsWith(`${path}: `)).toBe(true);
  expect(message).not.toContain("\n");
  return error as ModelError;
}

let fileCounter = 0;
function writeBytes(bytes: Uint8Array): string {
  const path = join(directory, `case-${fileCounter++}.gguf`);
  writeFileSync(path, bytes);
  return path;
}

/** The tiny model with its description changed by `change`, written to a new file. */
async function writeVariant(change: (model: GgufToWrite) => void): Promise<string> {
  const model = smallVocabularyModel();
  change(model);
  const path = join(directory, `variant-${fileCounter++}.gguf`);
  await writeGguf(path, model);
  return path;
}

describe("checkModelFile", () => {
  test("the tiny models pass and are summarized", async () => {
    const summary = await checkModelFile(tinyPath);
    expect(summary.architecture).toBe("gpt2");
    expect(summary.layers).toBe(2);
    expect(summary.vocabSize).toBe(50257);
    expect((await checkModelFile(await writeVariant(() => undefined))).vocabSize).toBe(SMALL_VOCABULARY);
    for (const dtype of ["f32", "q8_0"] as const) {
      const path = await ensureTinyModel({ home: join(directory, "home"), dtype });
      expect((await checkModelFile(path)).fileType).toBe(dtype === "f32" ? "F32" : "Q8_0");
    }
  });

  test("random bytes, an empty file, a directory and a missing file", async () => {
    const error = await expectCheckError(writeBytes(randomBytes(4096)), "BERTH_MODEL_NOT_GGUF");
    expect(error.message).toContain("GGUF");
    await expectCheckError(writeBytes(new Uint8Array()), "BERTH_MODEL_NOT_GGUF");
    const folder = join(directory, "a-folder.gguf");
    mkdirSync(folder);
    expect((await expectCheckError(folder, "BERTH_MODEL_NOT_GGUF")).message).toContain("directory");
    await expectCheckError(join(directory, "missing.gguf"), "BERTH_MODEL_NOT_FOUND");
  });

  test.skipIf(process.getuid?.() === 0)("a file without read permission", async () => {
    const path = writeBytes(tinyBytes.subarray(0, 64));
    chmodSync(path, 0o000);
    await expectCheckError(path, "BERTH_MODEL_UNREADABLE");
  });

  test("a file cut off in the header, the metadata, the tensor infos or the data", async () => {
    for (const length of [3, 20, 5000, 900_000, tinyBytes.length - 1]) {
      await expectCheckError(writeBytes(tinyBytes.subarray(0, length)), "BERTH_MODEL_TRUNCATED");
    }
  });

  test("unsupported GGUF versions", async () => {
    for (const version of [1, 4, 0x03000000]) {
      const bytes = Buffer.from(tinyBytes);
      bytes.writeUInt32LE(version, 4);
      await expectCheckError(writeBytes(bytes), "BERTH_MODEL_UNSUPPORTED_VERSION");
    }
  });

  test("architectures llama.cpp does not run, or that do not generate text", async () => {
    const unknown = await writeVariant((model) => {
      model.metadata.set("general.architecture", gv.str("not-a-model"));
    });
    expect((await expectCheckError(unknown, "BERTH_MODEL_UNSUPPORTED_ARCH")).message).toContain(
      "not-a-model",
    );
    const missing = await writeVariant((model) => model.metadata.delete("general.architecture"));
    await expectCheckError(missing, "BERTH_MODEL_UNSUPPORTED_ARCH");
    const embedding = await writeVariant((model) => {
      model.metadata.set("general.architecture", gv.str("bert"));
    });
    expect((await expectCheckError(embedding, "BERTH_MODEL_UNSUPPORTED_ARCH")).message).toContain(
      "text generation",
    );
  });

  test("hyperparameters and tokenizer llama.cpp needs: missing or of the wrong type", async () => {
    const cases: Array<[(model: GgufToWrite) => void, string]> = [
      [(model) => model.metadata.delete("gpt2.block_count"), "gpt2.block_count"],
      [(model) => model.metadata.set("gpt2.embedding_length", gv.str("64")), "must be an integer"],
      [(model) => model.metadata.set("gpt2.context_length", gv.u32(0)), "gpt2.context_length"],
      [(model) => model.metadata.delete("gpt2.attention.layer_norm_epsilon"), "layer_norm_epsilon"],
      [(model) => model.metadata.set("gpt2.attention.head_count", gv.u32(3)), "not a multiple"],
      [(model) => model.metadata.delete("tokenizer.ggml.model"), "tokenizer.ggml.model"],
      [(model) => model.metadata.set("tokenizer.ggml.model", gv.str("sentencepiece9")), "sentencepiece9"],
      [(model) => model.metadata.delete("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens"],
      [(model) => model.metadata.delete("tokenizer.ggml.merges"), "tokenizer.ggml.merges"],
      [(model) => model.metadata.set("tokenizer.ggml.pre", gv.str("gpt-5")), "gpt-5"],
      [(model) => model.metadata.set("tokenizer.ggml.token_type", gv.i32s([1, 1])), "one item per token"],
      [
        (model) => {
          const tokens = model.metadata.get("tokenizer.ggml.tokens");
          if (tokens?.type === "array" && tokens.itemType === "string") tokens.value[7] = tokens.value[3]!;
        },
        "appears twice in tokenizer.ggml.tokens (ids 3 and 7)",
      ],
      [
        (model) => {
          const tokens = model.metadata.get("tokenizer.ggml.tokens");
          if (tokens?.type === "array" && tokens.itemType === "string") {
            tokens.value[5] = "same\u0000one";
            tokens.value[9] = "same\u0000two";
          }
        },
        'token "same" appears twice in tokenizer.ggml.tokens (ids 5 and 9)',
      ],
    ];
    for (const [change, expected] of cases) {
      const error = await expectCheckError(await writeVariant(change), "BERTH_MODEL_INVALID");
      expect(error.message).toContain(expected);
    }
  });

  test("tensors missing, misshapen, extra, or beyond block_count", async () => {
    const cases: Array<[(model: GgufToWrite) => void, string]> = [
      [
        (model) => {
          model.tensors = model.tensors.filter((tensor) => tensor.name !== "blk.1.ffn_up.bias");
        },
        `"blk.1.ffn_up.bias" is missing`,
      ],
      [
        (model) => {
          model.tensors = model.tensors.filter((tensor) => !tensor.name.startsWith("blk.1."));
        },
        "layer 1 has no tensors",
      ],
      [(model) => model.metadata.set("gpt2.block_count", gv.u32(1)), "beyond the 1 layers"],
      [(model) => model.metadata.set("gpt2.context_length", gv.u32(2048)), "position_embd.weight"],
      [(model) => model.metadata.set("gpt2.feed_forward_length", gv.u32(128)), "ffn_up"],
      [
        (model) =>
          model.tensors.push({ name: "extra.weight", ne: [32], type: "f32", values: new Float32Array(32) }),
        "not part of a gpt2 model",
      ],
    ];
    for (const [change, expected] of cases) {
      const error = await expectCheckError(await writeVariant(change), "BERTH_MODEL_INVALID");
      expect(error.message).toContain(expected);
    }
  });

  test("layouts gguf.cpp refuses: overlapping tensors, duplicate keys, names with control bytes", async () => {
    // The offset of the second tensor (position_embd.weight) sits right after its name, dims, type.
    const name = Buffer.from("position_embd.weight");
    const nameAt = tinyBytes.indexOf(name);
    expect(nameAt).toBeGreaterThan(0);
    const offsetAt = nameAt + name.length + 4 + 2 * 8 + 4;
    const overlapping = Buffer.from(tinyBytes);
    overlapping.writeBigUInt64LE(0n, offsetAt);
    const overlapError = await expectCheckError(writeBytes(overlapping), "BERTH_MODEL_CORRUPT");
    expect(overlapError.message).toContain("position_embd.weight");

    // Two entries with one key (llama.cpp: "duplicate key").
    const twice = writeBytes(
      Buffer.concat([Buffer.from("GGUF"), u32(3), u64(0), u64(2), kv("a.b", 1), kv("a.b", 2)]),
    );
    expect((await expectCheckError(twice, "BERTH_MODEL_CORRUPT")).message).toContain("appears twice");
    // A key with a NUL byte is another (or an empty) key to llama.cpp, which aborts on an empty one.
    const nulKey = writeBytes(
      Buffer.concat([Buffer.from("GGUF"), u32(3), u64(0), u64(1), kv("\u0000\u0000kenizer", 1)]),
    );
    expect((await expectCheckError(nulKey, "BERTH_MODEL_CORRUPT")).message).toContain("contains a NUL byte");

    const controlName = await writeVariant((model) => {
      model.metadata.set("general.architecture", gv.str("evil\nmodel\u001b[31m"));
    });
    const controlError = await expectCheckError(controlName, "BERTH_MODEL_UNSUPPORTED_ARCH");
    expect(controlError.message).toContain("evil\\nmodel\\u001b[31m");
  });
});

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value);
  return bytes;
}

function u64(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(value));
  return bytes;
}

/** A metadata entry with a uint32 value (type code 4). */
function kv(key: string, value: number): Buffer {
  return Buffer.concat([u64(Buffer.byteLength(key)), Buffer.from(key), u32(4), u32(value)]);
}
