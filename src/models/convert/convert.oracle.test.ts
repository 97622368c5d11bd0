// Oracles no one here wrote: the same random checkpoint (made by transformers) converted by Berth
// and by llama.cpp's convert_hf_to_gguf.py gives the same tensors, byte for byte, and the same
// metadata; and Berth's GGUF in the real engine (node-llama-cpp) continues prompts greedily with
// exactly the tokens transformers' greedy generate gives. Python setup failures fail these tests.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Llama, Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  type CheckpointSpec,
  ensureCheckpoint,
  type GreedyResult,
  llamaCppConvert,
  transformersGreedy,
} from "../../../test/support/convert/oracle.js";
import { checkModelFile } from "../check.js";
import { plainValue, readGguf, readTensorBytes } from "../gguf.js";
import { type ConvertDtype, convertCheckpoint } from "./index.js";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "berth-convert-oracle-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

// Keys llama.cpp derives from the directory name / parameter count, not from the checkpoint.
const IGNORED_KEYS = new Set(["general.name", "general.size_label", "general.basename", "general.finetune"]);

async function expectSameGguf(berthPath: string, llamaCppPath: string): Promise<void> {
  const [ours, theirs] = await Promise.all([readGguf(berthPath), readGguf(llamaCppPath)]);
  const keys = (file: typeof ours) =>
    [...file.metadata.keys()].filter((key) => !IGNORED_KEYS.has(key)).sort();
  expect(keys(ours)).toEqual(keys(theirs));
  for (const key of keys(theirs)) {
    const value = plainValue(ours.metadata.get(key));
    const expected = plainValue(theirs.metadata.get(key));
    expect({ key, type: ours.metadata.get(key)?.type, value }).toEqual({
      key,
      type: theirs.metadata.get(key)?.type,
      value: expected,
    });
  }
  const byName = (file: typeof ours) => new Map(file.tensors.map((tensor) => [tensor.name, tensor]));
  const oursByName = byName(ours);
  expect([...oursByName.keys()].sort()).toEqual(theirs.tensors.map((tensor) => tensor.name).sort());
  for (const tensor of theirs.tensors) {
    const mine = oursByName.get(tensor.name)!;
    expect({ name: tensor.name, type: mine.typeName, ne: mine.ne }).toEqual({
      name: tensor.name,
      type: tensor.typeName,
      ne: tensor.ne,
    });
    const [a, b] = await Promise.all([
      readTensorBytes(ours, tensor.name),
      readTensorBytes(theirs, tensor.name),
    ]);
    expect(a.equals(b), `tensor ${tensor.name} bytes`).toBe(true);
  }
}

const CASES: { title: string; spec: CheckpointSpec; dtype: ConvertDtype }[] = [
  { title: "GPT-2 f32", spec: { arch: "gpt2" }, dtype: "f32" },
  { title: "GPT-2 f16", spec: { arch: "gpt2" }, dtype: "f16" },
  { title: "GPT-2 q8_0", spec: { arch: "gpt2" }, dtype: "q8_0" },
  {
    title: "GPT-2 f16 from vocab.json + merges.txt",
    spec: { arch: "gpt2", tokenizerFiles: "vocab-merges" },
    dtype: "f16",
  },
  { title: "Llama f32 (GQA, untied output)", spec: { arch: "llama" }, dtype: "f32" },
  { title: "Llama f16", spec: { arch: "llama" }, dtype: "f16" },
  {
    title: "Llama bf16 sharded → f16",
    spec: { arch: "llama", dtype: "bfloat16", shardBytes: 4_000_000 },
    dtype: "f16",
  },
  { title: "Mistral f16", spec: { arch: "mistral" }, dtype: "f16" },
  { title: "Qwen2 f16 (q/k/v biases, tied embeddings)", spec: { arch: "qwen2" }, dtype: "f16" },
  { title: "Qwen2 f16 from an f16 checkpoint", spec: { arch: "qwen2", dtype: "float16" }, dtype: "f16" },
];

describe("Berth's converter vs llama.cpp's convert_hf_to_gguf.py", () => {
  test.each(CASES)("$title: same tensors (bytes, types, shapes) and metadata", async ({ spec, dtype }) => {
    const checkpoint = await ensureCheckpoint(spec);
    const reference = await llamaCppConvert(checkpoint, dtype);
    const out = join(work, `${spec.arch}-${dtype}-${Math.random().toString(36).slice(2)}.gguf`);
    const result = await convertCheckpoint(checkpoint, out, { dtype });
    expect(result.path).toBe(out);
    await checkModelFile(out);
    await expectSameGguf(out, reference);
  });
});

/**
 * The bounded difference: llama.cpp's CPU kernels (GELU from an f16 table, its own accumulation
 * order) move logits by ~1e-3, so where transformers' best two logits are nearer than NEAR_TIE
 * either choice is right; after such a step the continuations may part and are not compared.
 * Every step before it must match exactly, and a step with a clear winner must never differ.
 */
const NEAR_TIE = 0.02;

/** Returns how many leading tokens matched exactly. */
function compareGreedy(prompt: string, ours: number[], expected: GreedyResult): number {
  for (let step = 0; step < expected.generated.length; step++) {
    if (ours[step] === expected.generated[step]) continue;
    const margin = expected.margins[step]!;
    expect(
      {
        step,
        ours: ours[step],
        nearTie: margin < NEAR_TIE,
        runnerUp: ours[step] === expected.runner_up[step],
      },
      `greedy continuation of ${JSON.stringify(prompt)}: ours ${ours.join(",")} vs transformers ${expected.generated.join(",")} (margins ${expected.margins.map((m) => m.toFixed(4)).join(",")})`,
    ).toEqual({ step, ours: ours[step], nearTie: true, runnerUp: true });
    return step;
  }
  return expected.generated.length;
}

const PROMPTS = ["Hello world, this is a test.", "The quick brown fox", " naïve café — 東京\n\ttabs 12345"];
const NEW_TOKENS = 16;

describe("greedy tokens: Berth's GGUF in node-llama-cpp = transformers' generate", () => {
  let llama: Llama;
  beforeAll(async () => {
    const { getLlama } = await import("node-llama-cpp");
    llama = await getLlama({ gpu: false, maxThreads: 2 });
  });
  afterAll(async () => {
    await llama?.dispose();
  });

  test.each<CheckpointSpec>([{ arch: "gpt2" }, { arch: "llama" }, { arch: "qwen2" }])(
    "$arch",
    async (spec) => {
      const checkpoint = await ensureCheckpoint(spec);
      const out = join(work, `${spec.arch}-greedy.gguf`);
      await convertCheckpoint(checkpoint, out, { dtype: "f32" });
      const expected = await transformersGreedy(checkpoint, NEW_TOKENS, PROMPTS);
      const model = await llama.loadModel({ modelPath: out });
      let matched = 0;
      try {
        for (const { prompt, prompt_ids: promptIds, generated, margins, runner_up } of expected) {
          const tokens = model.tokenize(prompt);
          expect([...tokens], `tokens of ${JSON.stringify(prompt)}`).toEqual(promptIds);
          // An f32 KV cache: llama.cpp's default f16 cache rounds keys and values, which is enough
          // to flip near-tied greedy choices of a random model.
          const context = await model.createContext({
            contextSize: 128,
            experimentalKvCacheKeyType: "F32",
            experimentalKvCacheValueType: "F32",
          });
          try {
            const sequence = context.getSequence();
            const ours: number[] = [];
            for await (const token of sequence.evaluate(tokens as Token[], { temperature: 0 })) {
              ours.push(token);
              if (ours.length >= NEW_TOKENS) break;
            }
            matched += compareGreedy(prompt, ours, {
              prompt,
              prompt_ids: promptIds,
              generated,
              margins,
              runner_up,
            });
          } finally {
            await context.dispose();
          }
        }
        // Near-ties are rare: most of the tokens must have been compared, not waved through.
        expect(matched).toBeGreaterThanOrEqual((PROMPTS.length * NEW_TOKENS) / 2);
      } finally {
        await model.dispose();
      }
    },
  );
});
