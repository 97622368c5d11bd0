// Tests of the tiny model writer: GPT-2 vocabulary, layout llama.cpp expects, determinism,
// and ensureTinyModel's cache (atomic, safe when processes race).
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { runProcess } from "../../test/support/run-process.js";
import { metadataNumber, metadataString, plainValue, readGguf, readTensorFloat32 } from "./gguf.js";
import { summarizeGguf } from "./inspect.js";
import {
  ensureTinyModel,
  GPT2_EOT_TOKEN,
  loadGpt2Vocabulary,
  TINY_GENERATOR_VERSION,
  tinyModelFileName,
  tinyParameterCount,
  writeTinyModel,
} from "./tiny.js";

const directory = mkdtempSync(join(tmpdir(), "berth-tiny-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

describe("GPT-2 vocabulary", () => {
  test("50257 byte-level tokens and 50000 merges, as GPT-2 has", () => {
    const { tokens, merges } = loadGpt2Vocabulary();
    expect(tokens).toHaveLength(50257);
    expect(merges).toHaveLength(50000);
    expect(tokens[GPT2_EOT_TOKEN]).toBe("<|endoftext|>");
    expect(tokens[15496]).toBe("Hello");
    expect(tokens[995]).toBe("Ġworld"); // a leading space is Ġ in GPT-2's byte-to-unicode map
    expect(tokens[198]).toBe("Ċ"); // "\n"
    expect(merges[0]).toBe("Ġ t");
  });
});

describe("tiny model file", () => {
  test("has the metadata and tensors llama.cpp's gpt2 loader expects", async () => {
    const path = join(directory, "tiny-q8.gguf");
    await writeTinyModel(path, { shape: "tiny", dtype: "q8_0" });
    const file = await readGguf(path);
    const { metadata } = file;
    expect(metadataString(metadata, "general.architecture")).toBe("gpt2");
    expect(metadataNumber(metadata, "general.file_type")).toBe(7);
    expect(metadataNumber(metadata, "gpt2.block_count")).toBe(2);
    expect(metadataNumber(metadata, "gpt2.embedding_length")).toBe(64);
    expect(metadataNumber(metadata, "gpt2.feed_forward_length")).toBe(256);
    expect(metadataNumber(metadata, "gpt2.attention.head_count")).toBe(2);
    expect(metadataNumber(metadata, "gpt2.context_length")).toBe(1024);
    expect(metadataString(metadata, "tokenizer.ggml.model")).toBe("gpt2");
    expect(metadataString(metadata, "tokenizer.ggml.pre")).toBe("gpt-2");
    expect(plainValue(metadata.get("tokenizer.ggml.add_bos_token"))).toBe(false);
    expect(metadata.has("tokenizer.chat_template")).toBe(false);
    for (const key of ["bos", "eos", "unknown"]) {
      expect(metadataNumber(metadata, `tokenizer.ggml.${key}_token_id`)).toBe(GPT2_EOT_TOKEN);
    }
    const tokenTypes = plainValue(metadata.get("tokenizer.ggml.token_type")) as number[];
    expect(tokenTypes[GPT2_EOT_TOKEN]).toBe(3);
    expect(tokenTypes.filter((type) => type !== 1)).toEqual([3]);

    const types = Object.fromEntries(file.tensors.map((tensor) => [tensor.name, tensor.typeName]));
    expect(types["token_embd.weight"]).toBe("q8_0");
    expect(types["blk.0.attn_qkv.weight"]).toBe("q8_0");
    expect(types["blk.1.ffn_down.weight"]).toBe("q8_0");
    // llama.cpp never quantizes position embeddings, norms or biases.
    expect(types["position_embd.weight"]).toBe("f16");
    expect(types["blk.0.attn_norm.weight"]).toBe("f32");
    expect(types["blk.0.attn_qkv.bias"]).toBe("f32");
    expect(types["output_norm.bias"]).toBe("f32");
    expect(types["output.weight"]).toBeUndefined(); // tied to token_embd
    const qkv = file.tensors.find((tensor) => tensor.name === "blk.0.attn_qkv.weight")!;
    expect(qkv.ne).toEqual([64, 192]);

    expect(summarizeGguf(file).parameterCount).toBe(tinyParameterCount("tiny"));
    const norm = await readTensorFloat32(file, "blk.0.attn_norm.weight");
    expect(norm.every((value) => value > 0.9 && value < 1.1)).toBe(true);
    const embedding = await readTensorFloat32(file, "token_embd.weight");
    expect(embedding.every(Number.isFinite)).toBe(true);
    expect(new Set(embedding.subarray(0, 64)).size).toBeGreaterThan(32);
  });

  test("GPT-2 124M has GPT-2's parameter count", () => {
    expect(tinyParameterCount("gpt2-124m")).toBe(124_439_808);
  });

  test("is deterministic: two writes are byte-identical, another seed differs", async () => {
    const first = join(directory, "a.gguf");
    const second = join(directory, "b.gguf");
    const other = join(directory, "c.gguf");
    await writeTinyModel(first, { dtype: "f16" });
    await writeTinyModel(second, { dtype: "f16" });
    await writeTinyModel(other, { dtype: "f16", seed: 12345 });
    expect(sha256(first)).toBe(sha256(second));
    expect(sha256(first)).not.toBe(sha256(other));
  });

  test("stores an optional chat template", async () => {
    const path = join(directory, "chat.gguf");
    await writeTinyModel(path, { chatTemplate: "{{ messages }}" });
    expect(metadataString((await readGguf(path)).metadata, "tokenizer.chat_template")).toBe("{{ messages }}");
  });
});

describe("ensureTinyModel", () => {
  test("writes once into the cache and returns the same path after", async () => {
    const home = join(directory, "home-once");
    const [path, samePath] = await Promise.all([
      ensureTinyModel({ home, dtype: "q8_0" }),
      ensureTinyModel({ home, dtype: "q8_0" }),
    ]);
    expect(path).toBe(samePath);
    expect(path).toBe(join(home, "models", "tiny", tinyModelFileName("tiny", "q8_0")));
    expect(path).toContain(`g${TINY_GENERATOR_VERSION}`);
    const hash = sha256(path);
    expect(await ensureTinyModel({ home, dtype: "q8_0" })).toBe(path);
    expect(sha256(path)).toBe(hash);
    expect(readdirSync(join(home, "models", "tiny"))).toEqual([tinyModelFileName("tiny", "q8_0")]);
  });

  test("two processes racing leave one complete file and no temp files", async () => {
    const home = join(directory, "home-race");
    // Runs the built module (dist/), as another test process would.
    const script = `import("./dist/models/tiny.js").then(async (m) => { process.stdout.write(await m.ensureTinyModel({ home: ${JSON.stringify(home)}, dtype: "f32" })); })`;
    const run = () =>
      runProcess(process.execPath, ["--input-type=module", "-e", script], { cwd: process.cwd() });
    const results = await Promise.all([run(), run(), run()]);
    for (const result of results) {
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
    }
    const path = results[0]!.stdout;
    expect(results.map((result) => result.stdout)).toEqual([path, path, path]);
    expect(existsSync(path)).toBe(true);
    expect(readdirSync(join(home, "models", "tiny"))).toEqual([tinyModelFileName("tiny", "f32")]);
    const reference = join(directory, "reference-f32.gguf");
    await writeTinyModel(reference, { dtype: "f32" });
    expect(sha256(path)).toBe(sha256(reference));
  });
});
