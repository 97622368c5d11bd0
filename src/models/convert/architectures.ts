// What each supported Hugging Face architecture becomes in GGUF: hyperparameter keys, tensor
// names, the expected shape of every checkpoint tensor, and the fix-ups llama.cpp's loader needs
// (GPT-2's Conv1D weights transposed; Llama's rotary q/k rows permuted). Mirrors llama.cpp's
// convert_hf_to_gguf.py (conversion/gpt2.py, llama.py, qwen.py) for the cases it covers.
import { join } from "node:path";
import { ModelError } from "../errors.js";
import { type GgufMetadata, gv } from "../gguf.js";
import type { Checkpoint, CheckpointTensor } from "./safetensors.js";

export interface PlannedTensor {
  /** GGUF tensor name. */
  name: string;
  /** Row-major output shape (GGUF's ne is its reverse). */
  shape: number[];
  source?: CheckpointTensor;
  /** A fix-up that needs the whole tensor (transpose, permutation); absent: streamed as is. */
  transform?: (values: Float32Array) => Float32Array;
  /** Values computed here rather than read (llama3 rope_freqs). */
  values?: Float32Array;
}

export interface ArchitecturePlan {
  /** general.architecture */
  architecture: string;
  metadata: GgufMetadata;
  tensors: PlannedTensor[];
}

/** Hugging Face `architectures[0]` → the converter that handles it. */
export const SUPPORTED_ARCHITECTURES: Record<string, "gpt2" | "llama" | "qwen2"> = {
  GPT2LMHeadModel: "gpt2",
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
};

type Config = Record<string, unknown>;

class ConfigReader {
  constructor(
    readonly config: Config,
    private readonly path: string,
  ) {}

  private bad(key: string, detail: string): ModelError {
    return new ModelError("BERTH_CHECKPOINT_CONFIG", `"${key}" ${detail}`, this.path);
  }

  int(keys: string[], fallback?: number): number {
    for (const key of keys) {
      const value = this.config[key];
      if (value === undefined || value === null) continue;
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
        throw this.bad(key, `is ${JSON.stringify(value)}, not a positive integer`);
      }
      return value;
    }
    if (fallback !== undefined) return fallback;
    throw this.bad(keys.join(" | "), "is missing");
  }

  num(keys: string[], fallback?: number): number {
    for (const key of keys) {
      const value = this.config[key];
      if (value === undefined || value === null) continue;
      if (typeof value !== "number" || !Number.isFinite(value))
        throw this.bad(key, `is ${JSON.stringify(value)}, not a number`);
      return value;
    }
    if (fallback !== undefined) return fallback;
    throw this.bad(keys.join(" | "), "is missing");
  }
}

/** Takes checkpoint tensors by name, checking shapes, and reports what is missing or left over. */
class TensorTaker {
  private readonly taken = new Set<string>();

  constructor(private readonly checkpoint: Checkpoint) {}

  private where(): string {
    return this.checkpoint.files.length === 1
      ? this.checkpoint.files[0]!
      : join(this.checkpoint.dir, "*.safetensors");
  }

  has(name: string): boolean {
    return this.checkpoint.tensors.has(name);
  }

  take(name: string, shape: number[]): CheckpointTensor {
    const tensor = this.checkpoint.tensors.get(name);
    if (!tensor) {
      throw new ModelError(
        "BERTH_CHECKPOINT_MISSING_TENSOR",
        `tensor "${name}" (shape [${shape}]) is in none of ${this.checkpoint.files.length} weight file(s)`,
        this.where(),
      );
    }
    if (tensor.shape.length !== shape.length || tensor.shape.some((dim, index) => dim !== shape[index])) {
      throw new ModelError(
        "BERTH_CHECKPOINT_SHAPE",
        `tensor "${name}" has shape [${tensor.shape}], config.json implies [${shape}]`,
        tensor.file,
      );
    }
    this.taken.add(name);
    return tensor;
  }

  ignore(test: (name: string) => boolean): void {
    for (const name of this.checkpoint.tensors.keys()) if (test(name)) this.taken.add(name);
  }

  /** Like llama.cpp, refuse tensors no mapping accounts for: they mean a variant we do not know. */
  checkAllTaken(architecture: string): void {
    for (const tensor of this.checkpoint.tensors.values()) {
      if (!this.taken.has(tensor.name)) {
        throw new ModelError(
          "BERTH_CHECKPOINT_UNEXPECTED_TENSOR",
          `tensor "${tensor.name}" [${tensor.shape}] has no place in a ${architecture} model`,
          tensor.file,
        );
      }
    }
  }
}

export function planArchitecture(
  checkpoint: Checkpoint,
  config: Config,
  configPath: string,
): ArchitecturePlan {
  const declared = Array.isArray(config.architectures) ? String(config.architectures[0]) : undefined;
  const family = declared !== undefined ? SUPPORTED_ARCHITECTURES[declared] : undefined;
  if (!family) {
    throw new ModelError(
      "BERTH_CHECKPOINT_ARCH",
      `architecture ${JSON.stringify(declared ?? config.model_type ?? null)} is not supported; supported: ${Object.keys(SUPPORTED_ARCHITECTURES).join(", ")}`,
      configPath,
    );
  }
  const reader = new ConfigReader(config, configPath);
  const taker = new TensorTaker(checkpoint);
  const plan = family === "gpt2" ? planGpt2(reader, taker) : planLlama(reader, taker, family);
  taker.checkAllTaken(declared!);
  return plan;
}

function planGpt2(config: ConfigReader, taker: TensorTaker): ArchitecturePlan {
  const embedding = config.int(["n_embd"]);
  const layers = config.int(["n_layer"]);
  const heads = config.int(["n_head"]);
  const vocab = config.int(["vocab_size"]);
  const positions = config.int(["n_positions"]);
  const feedForward = config.int(["n_inner"], 4 * embedding);
  // The original gpt2 checkpoint has no "transformer." prefix; transformers' save_pretrained adds it.
  const prefix = taker.has("transformer.wte.weight") ? "transformer." : "";
  const tensors: PlannedTensor[] = [];
  const plain = (hfName: string, ggufName: string, shape: number[]): void => {
    tensors.push({ name: ggufName, shape, source: taker.take(prefix + hfName, shape) });
  };
  // Conv1D stores [in, out]; GGUF wants the nn.Linear layout [out, in].
  const conv1d = (hfName: string, ggufName: string, inputs: number, outputs: number): void => {
    tensors.push({
      name: ggufName,
      shape: [outputs, inputs],
      source: taker.take(prefix + hfName, [inputs, outputs]),
      transform: (values) => transpose(values, inputs, outputs),
    });
  };
  plain("wte.weight", "token_embd.weight", [vocab, embedding]);
  plain("wpe.weight", "position_embd.weight", [positions, embedding]);
  for (let block = 0; block < layers; block++) {
    const hf = `h.${block}.`;
    const gg = `blk.${block}.`;
    plain(`${hf}ln_1.weight`, `${gg}attn_norm.weight`, [embedding]);
    plain(`${hf}ln_1.bias`, `${gg}attn_norm.bias`, [embedding]);
    conv1d(`${hf}attn.c_attn.weight`, `${gg}attn_qkv.weight`, embedding, 3 * embedding);
    plain(`${hf}attn.c_attn.bias`, `${gg}attn_qkv.bias`, [3 * embedding]);
    conv1d(`${hf}attn.c_proj.weight`, `${gg}attn_output.weight`, embedding, embedding);
    plain(`${hf}attn.c_proj.bias`, `${gg}attn_output.bias`, [embedding]);
    plain(`${hf}ln_2.weight`, `${gg}ffn_norm.weight`, [embedding]);
    plain(`${hf}ln_2.bias`, `${gg}ffn_norm.bias`, [embedding]);
    conv1d(`${hf}mlp.c_fc.weight`, `${gg}ffn_up.weight`, embedding, feedForward);
    plain(`${hf}mlp.c_fc.bias`, `${gg}ffn_up.bias`, [feedForward]);
    conv1d(`${hf}mlp.c_proj.weight`, `${gg}ffn_down.weight`, feedForward, embedding);
    plain(`${hf}mlp.c_proj.bias`, `${gg}ffn_down.bias`, [embedding]);
  }
  plain("ln_f.weight", "output_norm.weight", [embedding]);
  plain("ln_f.bias", "output_norm.bias", [embedding]);
  if (taker.has("lm_head.weight")) {
    tensors.push({
      name: "output.weight",
      shape: [vocab, embedding],
      source: taker.take("lm_head.weight", [vocab, embedding]),
    });
  }
  // Attention masks saved as buffers by older transformers: not weights.
  taker.ignore((name) => name.endsWith(".attn.bias") || name.endsWith(".attn.masked_bias"));

  const metadata: GgufMetadata = new Map();
  metadata.set("gpt2.block_count", gv.u32(layers));
  metadata.set("gpt2.context_length", gv.u32(config.int(["n_ctx", "n_positions"])));
  metadata.set("gpt2.embedding_length", gv.u32(embedding));
  metadata.set("gpt2.feed_forward_length", gv.u32(feedForward));
  metadata.set("gpt2.attention.head_count", gv.u32(heads));
  metadata.set("gpt2.attention.layer_norm_epsilon", gv.f32(config.num(["layer_norm_epsilon"], 1e-5)));
  return { architecture: "gpt2", metadata, tensors };
}

function planLlama(config: ConfigReader, taker: TensorTaker, family: "llama" | "qwen2"): ArchitecturePlan {
  const embedding = config.int(["hidden_size"]);
  const layers = config.int(["num_hidden_layers"]);
  const heads = config.int(["num_attention_heads"]);
  const headsKv = config.int(["num_key_value_heads"], heads);
  const vocab = config.int(["vocab_size"]);
  const feedForward = config.int(["intermediate_size"]);
  const explicitHeadDim = config.config.head_dim;
  const headDim = config.int(["head_dim"], Math.floor(embedding / heads));
  if (headDim % 2 !== 0) {
    throw new ModelError(
      "BERTH_CHECKPOINT_CONFIG",
      `head size ${headDim} is odd; rotary embeddings need an even one`,
    );
  }
  const a = family; // GGUF key prefix
  const tensors: PlannedTensor[] = [];
  const plain = (
    hfName: string,
    ggufName: string,
    shape: number[],
    transform?: PlannedTensor["transform"],
  ): void => {
    tensors.push({
      name: ggufName,
      shape,
      source: taker.take(hfName, shape),
      ...(transform ? { transform } : {}),
    });
  };
  const optional = (
    hfName: string,
    ggufName: string,
    shape: number[],
    transform?: PlannedTensor["transform"],
  ): void => {
    if (taker.has(hfName)) plain(hfName, ggufName, shape, transform);
  };
  // llama.cpp's Llama graph applies rotary embeddings to interleaved pairs; HF's to two halves.
  // Qwen2 in llama.cpp uses the NeoX (halves) layout, so its rows stay as they are.
  const permuteQ =
    family === "llama" ? (values: Float32Array) => permuteRotary(values, heads, headDim) : undefined;
  const permuteK =
    family === "llama" ? (values: Float32Array) => permuteRotary(values, headsKv, headDim) : undefined;

  plain("model.embed_tokens.weight", "token_embd.weight", [vocab, embedding]);
  for (let block = 0; block < layers; block++) {
    const hf = `model.layers.${block}.`;
    const gg = `blk.${block}.`;
    plain(`${hf}input_layernorm.weight`, `${gg}attn_norm.weight`, [embedding]);
    plain(`${hf}self_attn.q_proj.weight`, `${gg}attn_q.weight`, [heads * headDim, embedding], permuteQ);
    plain(`${hf}self_attn.k_proj.weight`, `${gg}attn_k.weight`, [headsKv * headDim, embedding], permuteK);
    plain(`${hf}self_attn.v_proj.weight`, `${gg}attn_v.weight`, [headsKv * headDim, embedding]);
    plain(`${hf}self_attn.o_proj.weight`, `${gg}attn_output.weight`, [embedding, heads * headDim]);
    // Qwen2 always has q/k/v biases; Llama only with attention_bias.
    const biases = family === "qwen2" || config.config.attention_bias === true ? plain : optional;
    biases(`${hf}self_attn.q_proj.bias`, `${gg}attn_q.bias`, [heads * headDim], permuteQ);
    biases(`${hf}self_attn.k_proj.bias`, `${gg}attn_k.bias`, [headsKv * headDim], permuteK);
    biases(`${hf}self_attn.v_proj.bias`, `${gg}attn_v.bias`, [headsKv * headDim]);
    optional(`${hf}self_attn.o_proj.bias`, `${gg}attn_output.bias`, [embedding]);
    plain(`${hf}post_attention_layernorm.weight`, `${gg}ffn_norm.weight`, [embedding]);
    plain(`${hf}mlp.gate_proj.weight`, `${gg}ffn_gate.weight`, [feedForward, embedding]);
    plain(`${hf}mlp.up_proj.weight`, `${gg}ffn_up.weight`, [feedForward, embedding]);
    plain(`${hf}mlp.down_proj.weight`, `${gg}ffn_down.weight`, [embedding, feedForward]);
  }
  plain("model.norm.weight", "output_norm.weight", [embedding]);
  if (taker.has("lm_head.weight")) {
    plain("lm_head.weight", "output.weight", [vocab, embedding]);
  } else if (config.config.tie_word_embeddings === false) {
    taker.take("lm_head.weight", [vocab, embedding]); // throws: untied models need their output layer
  }
  taker.ignore((name) => name.endsWith(".rotary_emb.inv_freq"));

  const metadata: GgufMetadata = new Map();
  metadata.set(`${a}.block_count`, gv.u32(layers));
  metadata.set(`${a}.context_length`, gv.u32(config.int(["max_position_embeddings"])));
  metadata.set(`${a}.embedding_length`, gv.u32(embedding));
  metadata.set(`${a}.feed_forward_length`, gv.u32(feedForward));
  metadata.set(`${a}.attention.head_count`, gv.u32(heads));
  metadata.set(`${a}.attention.head_count_kv`, gv.u32(headsKv));
  metadata.set(`${a}.rope.freq_base`, gv.f32(config.num(["rope_theta"], 10000)));
  metadata.set(`${a}.attention.layer_norm_rms_epsilon`, gv.f32(config.num(["rms_norm_eps"])));
  if (explicitHeadDim !== undefined && explicitHeadDim !== null) {
    metadata.set(`${a}.attention.key_length`, gv.u32(headDim));
    metadata.set(`${a}.attention.value_length`, gv.u32(headDim));
  }
  if (family === "llama") {
    metadata.set(`${a}.vocab_size`, gv.u32(vocab));
    metadata.set(`${a}.rope.dimension_count`, gv.u32(headDim));
  }
  const ropeFreqs = ropeScaling(config, metadata, a, headDim);
  if (ropeFreqs) tensors.push({ name: "rope_freqs.weight", shape: [ropeFreqs.length], values: ropeFreqs });
  return { architecture: family, metadata, tensors };
}

/** rope_scaling: linear and yarn as metadata; llama3 as a rope_freqs tensor (llama.cpp's way). */
function ropeScaling(
  config: ConfigReader,
  metadata: GgufMetadata,
  a: string,
  headDim: number,
): Float32Array | undefined {
  const scaling = config.config.rope_scaling as Record<string, unknown> | null | undefined;
  if (!scaling) return undefined;
  const type = String(scaling.rope_type ?? scaling.type ?? "");
  const factor = typeof scaling.factor === "number" ? scaling.factor : undefined;
  if (type === "linear" && factor !== undefined) {
    metadata.set(`${a}.rope.scaling.type`, gv.str("linear"));
    metadata.set(`${a}.rope.scaling.factor`, gv.f32(factor));
    return undefined;
  }
  if (type === "yarn" && factor !== undefined) {
    metadata.set(`${a}.rope.scaling.type`, gv.str("yarn"));
    metadata.set(`${a}.rope.scaling.factor`, gv.f32(factor));
    metadata.set(
      `${a}.rope.scaling.original_context_length`,
      gv.u32(Number(scaling.original_max_position_embeddings)),
    );
    return undefined;
  }
  if (type.toLowerCase() === "llama3") {
    const base = config.num(["rope_theta"], 10000);
    const ropeFactor = factor ?? 8;
    const low = typeof scaling.low_freq_factor === "number" ? scaling.low_freq_factor : 1;
    const high = typeof scaling.high_freq_factor === "number" ? scaling.high_freq_factor : 4;
    const oldContext =
      typeof scaling.original_max_position_embeddings === "number"
        ? scaling.original_max_position_embeddings
        : 8192;
    const lowWavelen = oldContext / low;
    const highWavelen = oldContext / high;
    const out = new Float32Array(headDim / 2);
    for (let index = 0; index < headDim / 2; index++) {
      const freq = Math.fround(1 / base ** Math.fround((2 * index) / headDim));
      const wavelen = (2 * Math.PI) / freq;
      if (wavelen < highWavelen) out[index] = 1;
      else if (wavelen > lowWavelen) out[index] = ropeFactor;
      else {
        const smooth = (oldContext / wavelen - low) / (high - low);
        out[index] = 1 / ((1 - smooth) / ropeFactor + smooth);
      }
    }
    return out;
  }
  if (type === "default" || type === "") return undefined;
  throw new ModelError(
    "BERTH_CHECKPOINT_CONFIG",
    `rope_scaling type ${JSON.stringify(type)} is not supported (linear, yarn, llama3 are)`,
  );
}

/** [rows, cols] row-major → [cols, rows]. */
export function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let row = 0; row < rows; row++) {
    const base = row * cols;
    for (let col = 0; col < cols; col++) out[col * rows + row] = values[base + col]!;
  }
  return out;
}

/**
 * llama.cpp's LlamaModel.permute: per head, rows [first half | second half] become interleaved
 * pairs (reshape(n_head, 2, d/2, ...).swapaxes(1, 2)). Works for weights and biases alike.
 */
export function permuteRotary(values: Float32Array, headCount: number, headDim: number): Float32Array {
  const rowLength = values.length / (headCount * headDim);
  const half = headDim / 2;
  const out = new Float32Array(values.length);
  for (let head = 0; head < headCount; head++) {
    for (let pair = 0; pair < half; pair++) {
      for (let side = 0; side < 2; side++) {
        const from = (head * headDim + side * half + pair) * rowLength;
        const to = (head * headDim + pair * 2 + side) * rowLength;
        out.set(values.subarray(from, from + rowLength), to);
      }
    }
  }
  return out;
}
