// The converter without Python: checkpoints written here (a safetensors writer of a few lines),
// bad ones refused with a message naming the file and the tensor and nothing written; the pure
// fix-ups (transpose, rotary permutation, pre-tokenizer names) against hand-computed answers;
// and `berth model convert` end to end (exit codes, --json, stderr without stack traces).
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { runBerth as berth } from "../../../test/support/berth-cli.js";
import { EMBD, LAYERS, type Tensors, writeGpt2Checkpoint } from "../../../test/support/convert/checkpoint.js";
import { ModelError } from "../errors.js";
import { readGguf, readTensorFloat32 } from "../gguf.js";
import { permuteRotary, transpose } from "./architectures.js";
import { convertCheckpoint } from "./index.js";
import { decodeToFloat32 } from "./safetensors.js";
import { preTokenizerName } from "./tokenizer.js";

const root = mkdtempSync(join(tmpdir(), "berth-convert-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;

/** A GPT-2 checkpoint directory; `edit` changes its tensors before they are written. */
function gpt2Checkpoint(edit?: (tensors: Tensors) => void, config: Record<string, unknown> = {}): string {
  return writeGpt2Checkpoint(join(root, `ckpt-${counter++}`), edit, config);
}

async function convertError(dir: string): Promise<ModelError> {
  const out = join(root, `out-${counter++}.gguf`);
  const error = await convertCheckpoint(dir, out, { dtype: "f16" }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ModelError);
  // Bad input changes nothing: no output file, no temp file left beside it.
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(root).filter((name) => name.includes(`out-${counter - 1}`))).toEqual([]);
  return error as ModelError;
}

describe("convertCheckpoint on a checkpoint written here", () => {
  test("a good GPT-2 checkpoint converts: Conv1D weights transposed, norms f32, matrices f16", async () => {
    const dir = gpt2Checkpoint();
    const out = join(root, "good.gguf");
    const result = await convertCheckpoint(dir, out, { dtype: "f16" });
    expect(result).toMatchObject({ architecture: "gpt2", tensors: 4 + 12 * LAYERS });
    const file = await readGguf(out);
    const qkv = file.tensors.find((tensor) => tensor.name === "blk.0.attn_qkv.weight")!;
    expect(qkv).toMatchObject({ typeName: "f16", ne: [EMBD, 3 * EMBD] });
    expect(file.tensors.find((tensor) => tensor.name === "blk.0.attn_norm.weight")?.typeName).toBe("f32");
    expect(file.tensors.find((tensor) => tensor.name === "position_embd.weight")?.typeName).toBe("f32");
    // Row r of the GGUF tensor is column r of the Conv1D weight.
    const values = await readTensorFloat32(file, "blk.0.attn_qkv.weight");
    const name = "transformer.h.0.attn.c_attn.weight";
    const source = (row: number, col: number) => Math.fround(Math.sin(row * 3 * EMBD + col + name.length));
    expect(values[5 * EMBD + 7]).toBeCloseTo(source(7, 5), 3);
    expect(values[90 * EMBD + 31]).toBeCloseTo(source(31, 90), 3);
    expect(file.metadata.get("tokenizer.ggml.pre")?.value).toBe("gpt-2");
    expect(file.metadata.get("gpt2.context_length")?.value).toBe(64);
  });

  test("a missing tensor names the tensor and the file", async () => {
    const error = await convertError(gpt2Checkpoint((t) => delete t["transformer.h.1.mlp.c_fc.bias"]));
    expect(error.code).toBe("BERTH_CHECKPOINT_MISSING_TENSOR");
    expect(error.message).toContain("transformer.h.1.mlp.c_fc.bias");
    expect(error.message).toContain("model.safetensors");
  });

  test("a tensor of the wrong shape names the tensor, the file and both shapes", async () => {
    const error = await convertError(
      gpt2Checkpoint((t) => {
        t["transformer.h.0.attn.c_proj.weight"] = { shape: [EMBD, EMBD + 1] };
      }),
    );
    expect(error.code).toBe("BERTH_CHECKPOINT_SHAPE");
    expect(error.message).toContain("transformer.h.0.attn.c_proj.weight");
    expect(error.message).toContain(`[${EMBD},${EMBD + 1}]`);
    expect(error.message).toContain("model.safetensors");
  });

  test("a truncated safetensors header names the file", async () => {
    const dir = gpt2Checkpoint();
    truncateSync(join(dir, "model.safetensors"), 8 + 100);
    const error = await convertError(dir);
    expect(error.code).toBe("BERTH_CHECKPOINT_TRUNCATED");
    expect(error.message).toContain(join(dir, "model.safetensors"));
  });

  test("truncated tensor data names the file and the tensor that runs past the end", async () => {
    const dir = gpt2Checkpoint();
    const path = join(dir, "model.safetensors");
    const { size } = await import("node:fs").then((fs) => fs.statSync(path));
    truncateSync(path, size - 4);
    const error = await convertError(dir);
    expect(error.code).toBe("BERTH_CHECKPOINT_TRUNCATED");
    expect(error.message).toContain("transformer.h.1.mlp.c_proj.bias");
  });

  test("an unknown dtype names the file and the tensor", async () => {
    const error = await convertError(
      gpt2Checkpoint((t) => {
        t["transformer.ln_f.bias"] = { dtype: "F9", shape: [EMBD], data: Buffer.alloc(EMBD * 4) };
      }),
    );
    expect(error.code).toBe("BERTH_CHECKPOINT_DTYPE");
    expect(error.message).toContain("transformer.ln_f.bias");
    expect(error.message).toContain("model.safetensors");
  });

  test("an integer tensor where a weight belongs is refused by dtype", async () => {
    const error = await convertError(
      gpt2Checkpoint((t) => {
        t["transformer.ln_f.bias"] = { dtype: "I64", shape: [EMBD], data: Buffer.alloc(EMBD * 8) };
      }),
    );
    expect(error.code).toBe("BERTH_CHECKPOINT_DTYPE");
    expect(error.message).toContain("transformer.ln_f.bias");
  });

  test("a pickle-only checkpoint is refused with the reason and what to do instead", async () => {
    const dir = join(root, "pickle-only");
    mkdirSync(dir);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ architectures: ["GPT2LMHeadModel"] }));
    writeFileSync(join(dir, "pytorch_model.bin"), Buffer.from("PK\x03\x04 not really a pickle"));
    const error = await convertError(dir);
    expect(error.code).toBe("BERTH_CHECKPOINT_PICKLE");
    expect(error.message).toContain("pytorch_model.bin");
    expect(error.message).toContain("arbitrary code");
    expect(error.message).toContain("safetensors");
  });

  test("an unknown architecture lists the supported ones", async () => {
    const error = await convertError(gpt2Checkpoint(undefined, { architectures: ["BertForMaskedLM"] }));
    expect(error.code).toBe("BERTH_CHECKPOINT_ARCH");
    expect(error.message).toContain("BertForMaskedLM");
    for (const name of ["GPT2LMHeadModel", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"]) {
      expect(error.message).toContain(name);
    }
  });

  test("a tensor no mapping accounts for is refused, named", async () => {
    const error = await convertError(
      gpt2Checkpoint((t) => {
        t["transformer.h.0.attn.extra_gate"] = { shape: [EMBD] };
      }),
    );
    expect(error.code).toBe("BERTH_CHECKPOINT_UNEXPECTED_TENSOR");
    expect(error.message).toContain("transformer.h.0.attn.extra_gate");
  });

  test("a sharded checkpoint whose index names a missing shard names that file", async () => {
    const dir = gpt2Checkpoint();
    rmSync(join(dir, "model.safetensors"));
    writeFileSync(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { "transformer.wte.weight": "model-00001-of-00002.safetensors" } }),
    );
    const error = await convertError(dir);
    expect(error.code).toBe("BERTH_CHECKPOINT_NOT_FOUND");
    expect(error.message).toContain("model-00001-of-00002.safetensors");
  });
});

describe("fix-ups", () => {
  test("transpose swaps rows and columns", () => {
    expect([...transpose(Float32Array.from([1, 2, 3, 4, 5, 6]), 2, 3)]).toEqual([1, 4, 2, 5, 3, 6]);
  });

  test("rotary permutation interleaves each head's halves (llama.cpp's permute)", () => {
    // 2 heads of 4 rows, 1 column: per head rows [a0 a1 | b0 b1] -> [a0 b0 a1 b1].
    const rows = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
    expect([...permuteRotary(rows, 2, 4)]).toEqual([0, 2, 1, 3, 10, 12, 11, 13]);
    // With 2 columns the rows move whole.
    const wide = Float32Array.from([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]);
    expect([...permuteRotary(wide, 1, 4)]).toEqual([0, 0.5, 2, 2.5, 1, 1.5, 3, 3.5]);
  });

  test("bf16 and f16 decode exactly", () => {
    const bf16 = Buffer.alloc(4);
    bf16.writeUInt16LE(0x3f80, 0); // 1.0
    bf16.writeUInt16LE(0xc040, 2); // -3.0
    expect([...decodeToFloat32("BF16", bf16)]).toEqual([1, -3]);
    const f16 = Buffer.alloc(6);
    f16.writeUInt16LE(0x3c00, 0); // 1.0
    f16.writeUInt16LE(0xc200, 2); // -3.0
    f16.writeUInt16LE(0x0001, 4); // smallest subnormal
    expect([...decodeToFloat32("F16", f16)]).toEqual([1, -3, 2 ** -24]);
  });

  const llama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const qwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const split = (regex: string) => ({
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    ],
  });
  test.each([
    [
      "GPT-2 byte-level",
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
      "gpt-2",
    ],
    ["Llama 3", split(llama3Regex), "llama-bpe"],
    ["Qwen2", split(qwen2Regex), "qwen2"],
    [
      "SmolLM",
      {
        type: "Sequence",
        pretokenizers: [
          { type: "Digits", individual_digits: true },
          { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
        ],
      },
      "smollm",
    ],
  ])("pre-tokenizer %s is %s's name", (_title, pre, name) => {
    expect(preTokenizerName(pre, "tokenizer.json")).toBe(name);
  });

  test("an unknown pre-tokenizer is refused, not guessed", () => {
    expect(() => preTokenizerName(split("\\p{L}+|\\s+"), "x/tokenizer.json")).toThrow(
      /BERTH|not one Berth knows/,
    );
  });
});

describe("berth model convert", () => {
  test("converts a directory and prints JSON with --json", async () => {
    const out = join(root, "cli.gguf");
    const run = await berth([
      "model",
      "convert",
      gpt2Checkpoint(),
      "--out",
      out,
      "--dtype",
      "q8_0",
      "--json",
    ]);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ path: out, architecture: "gpt2", dtype: "q8_0" });
    const file = await readGguf(out);
    expect(file.tensors.find((tensor) => tensor.name === "blk.0.ffn_up.weight")?.typeName).toBe("q8_0");
  });

  test("a bad checkpoint exits 2 with one line naming file and tensor, no stack trace", async () => {
    const dir = gpt2Checkpoint((t) => delete t["transformer.wpe.weight"]);
    const run = await berth(["model", "convert", dir, "--out", join(root, "never.gguf")]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("transformer.wpe.weight");
    expect(run.stderr).toContain("BERTH_CHECKPOINT_MISSING_TENSOR");
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(root, "never.gguf"))).toBe(false);
  });

  test("an unknown --dtype is a usage error", async () => {
    const run = await berth([
      "model",
      "convert",
      gpt2Checkpoint(),
      "--out",
      join(root, "x.gguf"),
      "--dtype",
      "q4",
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--dtype");
  });
});
