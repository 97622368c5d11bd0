// ggml tensor data types: block sizes of every type (to size tensors in any GGUF file), and the
// encoders/decoders for the types Berth writes: f32, f16 and Q8_0 (bit-exact with ggml's reference).
import { ModelError } from "./errors.js";

export interface GgmlTypeInfo {
  name: string;
  /** Values per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

/** ggml type code → block layout (from gguf-py's GGML_QUANT_SIZES). */
export const GGML_TYPES: Record<number, GgmlTypeInfo> = {
  0: { name: "f32", blockSize: 1, typeSize: 4 },
  1: { name: "f16", blockSize: 1, typeSize: 2 },
  2: { name: "q4_0", blockSize: 32, typeSize: 18 },
  3: { name: "q4_1", blockSize: 32, typeSize: 20 },
  6: { name: "q5_0", blockSize: 32, typeSize: 22 },
  7: { name: "q5_1", blockSize: 32, typeSize: 24 },
  8: { name: "q8_0", blockSize: 32, typeSize: 34 },
  9: { name: "q8_1", blockSize: 32, typeSize: 40 },
  10: { name: "q2_K", blockSize: 256, typeSize: 84 },
  11: { name: "q3_K", blockSize: 256, typeSize: 110 },
  12: { name: "q4_K", blockSize: 256, typeSize: 144 },
  13: { name: "q5_K", blockSize: 256, typeSize: 176 },
  14: { name: "q6_K", blockSize: 256, typeSize: 210 },
  15: { name: "q8_K", blockSize: 256, typeSize: 292 },
  16: { name: "iq2_xxs", blockSize: 256, typeSize: 66 },
  17: { name: "iq2_xs", blockSize: 256, typeSize: 74 },
  18: { name: "iq3_xxs", blockSize: 256, typeSize: 98 },
  19: { name: "iq1_s", blockSize: 256, typeSize: 50 },
  20: { name: "iq4_nl", blockSize: 32, typeSize: 18 },
  21: { name: "iq3_s", blockSize: 256, typeSize: 110 },
  22: { name: "iq2_s", blockSize: 256, typeSize: 82 },
  23: { name: "iq4_xs", blockSize: 256, typeSize: 136 },
  24: { name: "i8", blockSize: 1, typeSize: 1 },
  25: { name: "i16", blockSize: 1, typeSize: 2 },
  26: { name: "i32", blockSize: 1, typeSize: 4 },
  27: { name: "i64", blockSize: 1, typeSize: 8 },
  28: { name: "f64", blockSize: 1, typeSize: 8 },
  29: { name: "iq1_m", blockSize: 256, typeSize: 56 },
  30: { name: "bf16", blockSize: 1, typeSize: 2 },
  34: { name: "tq1_0", blockSize: 256, typeSize: 54 },
  35: { name: "tq2_0", blockSize: 256, typeSize: 66 },
  39: { name: "mxfp4", blockSize: 32, typeSize: 17 },
  40: { name: "nvfp4", blockSize: 64, typeSize: 36 },
  41: { name: "q1_0", blockSize: 128, typeSize: 18 },
  42: { name: "q2_0", blockSize: 64, typeSize: 18 },
};

export function ggmlTypeInfo(code: number): GgmlTypeInfo | undefined {
  return GGML_TYPES[code];
}

/** llama.cpp's `general.file_type` values (enum llama_ftype) → a readable name. */
export const LLAMA_FILE_TYPES: Record<number, string> = {
  0: "F32",
  1: "F16",
  2: "Q4_0",
  3: "Q4_1",
  7: "Q8_0",
  8: "Q5_0",
  9: "Q5_1",
  10: "Q2_K",
  11: "Q3_K_S",
  12: "Q3_K_M",
  13: "Q3_K_L",
  14: "Q4_K_S",
  15: "Q4_K_M",
  16: "Q5_K_S",
  17: "Q5_K_M",
  18: "Q6_K",
  19: "IQ2_XXS",
  20: "IQ2_XS",
  21: "Q2_K_S",
  22: "IQ3_XS",
  23: "IQ3_XXS",
  24: "IQ1_S",
  25: "IQ4_NL",
  26: "IQ3_S",
  27: "IQ3_M",
  28: "IQ2_S",
  29: "IQ2_M",
  30: "IQ4_XS",
  31: "IQ1_M",
  32: "BF16",
  36: "TQ1_0",
  37: "TQ2_0",
  38: "MXFP4_MOE",
};

export const QK8_0 = 32;
const Q8_0_BLOCK_BYTES = 2 + QK8_0;

// Scratch views to reinterpret float bits without allocating.
const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/** IEEE half-precision bits of a float32, rounded to nearest even (like ggml's FP32_TO_FP16). */
export function float32ToFloat16Bits(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half (or zero): shift the full significand into the 10-bit field.
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    const truncated = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    const rounded =
      remainder > halfway || (remainder === halfway && (truncated & 1) === 1) ? truncated + 1 : truncated;
    return sign | rounded;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half += 1;
  return sign | half;
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa !== 0 ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** C's roundf: halves away from zero (Math.round rounds them up). */
function roundHalfAwayFromZero(value: number): number {
  return value < 0 ? -Math.round(-value) : Math.round(value);
}

/**
 * Q8_0: per block of 32 values, scale d = max|x|/127 stored as f16, then 32 int8 round(x/d).
 * Mirrors ggml's quantize_row_q8_0_ref, including its float32 arithmetic.
 */
export function quantizeQ8_0(values: Float32Array): Buffer {
  if (values.length % QK8_0 !== 0) {
    throw new RangeError(`Q8_0 needs a multiple of ${QK8_0} values, got ${values.length}`);
  }
  const blockCount = values.length / QK8_0;
  const out = Buffer.alloc(blockCount * Q8_0_BLOCK_BYTES);
  const quants = new Int8Array(out.buffer, out.byteOffset, out.byteLength);
  for (let block = 0; block < blockCount; block++) {
    const base = block * QK8_0;
    let absMax = 0;
    for (let index = 0; index < QK8_0; index++) {
      const magnitude = Math.abs(values[base + index]!);
      if (magnitude > absMax) absMax = magnitude;
    }
    const scale = Math.fround(absMax / 127);
    const inverse = scale !== 0 ? Math.fround(1 / scale) : 0;
    const at = block * Q8_0_BLOCK_BYTES;
    out.writeUInt16LE(float32ToFloat16Bits(scale), at);
    for (let index = 0; index < QK8_0; index++) {
      quants[at + 2 + index] = roundHalfAwayFromZero(Math.fround(values[base + index]! * inverse));
    }
  }
  return out;
}

export function dequantizeQ8_0(bytes: Uint8Array, valueCount: number): Float32Array {
  const blockCount = valueCount / QK8_0;
  if (!Number.isInteger(blockCount) || bytes.length < blockCount * Q8_0_BLOCK_BYTES) {
    throw new RangeError(`Q8_0 data of ${bytes.length} bytes cannot hold ${valueCount} values`);
  }
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(valueCount);
  for (let block = 0; block < blockCount; block++) {
    const at = block * Q8_0_BLOCK_BYTES;
    const scale = float16BitsToFloat32(view.readUInt16LE(at));
    for (let index = 0; index < QK8_0; index++) {
      out[block * QK8_0 + index] = view.readInt8(at + 2 + index) * scale;
    }
  }
  return out;
}

export function encodeTensorChunk(type: "f32" | "f16" | "q8_0", values: Float32Array): Uint8Array {
  switch (type) {
    case "f32":
      // Float32Array is little-endian on every platform Node supports for llama.cpp.
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case "f16": {
      const halves = new Uint16Array(values.length);
      for (let index = 0; index < values.length; index++)
        halves[index] = float32ToFloat16Bits(values[index]!);
      return new Uint8Array(halves.buffer);
    }
    case "q8_0":
      return quantizeQ8_0(values);
  }
}

/** Decodes f32, f16 or Q8_0 tensor bytes into float32 values. */
export function decodeTensorBytes(typeCode: number, bytes: Uint8Array, valueCount: number): Float32Array {
  switch (typeCode) {
    case 0: {
      const copy = new Uint8Array(valueCount * 4);
      copy.set(bytes.subarray(0, valueCount * 4));
      return new Float32Array(copy.buffer);
    }
    case 1: {
      const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const out = new Float32Array(valueCount);
      for (let index = 0; index < valueCount; index++)
        out[index] = float16BitsToFloat32(view.readUInt16LE(index * 2));
      return out;
    }
    case 8:
      return dequantizeQ8_0(bytes, valueCount);
    default:
      throw new ModelError(
        "BERTH_MODEL_UNSUPPORTED_TYPE",
        `decoding ggml type ${GGML_TYPES[typeCode]?.name ?? typeCode} (Berth decodes f32, f16, q8_0)`,
      );
  }
}
