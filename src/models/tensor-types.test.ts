// Tests of the f16 and Q8_0 codecs: known bit patterns, rounding, and the Q8_0 error bound.
import { describe, expect, test } from "vitest";
import {
  decodeTensorBytes,
  dequantizeQ8_0,
  encodeTensorChunk,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  QK8_0,
  quantizeQ8_0,
} from "./tensor-types.js";

/** Seeded values so a failure reproduces. */
function seededValues(count: number, seed: number, scale: number): Float32Array {
  let state = seed >>> 0;
  const values = new Float32Array(count);
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[index] = (state / 4294967296 - 0.5) * 2 * scale;
  }
  return values;
}

describe("f16", () => {
  test.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest half
    [65520, 0x7c00], // rounds up to infinity
    [Number.POSITIVE_INFINITY, 0x7c00],
    [Number.NEGATIVE_INFINITY, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // exactly half of it: ties to even (0)
    [3 * 2 ** -25, 0x0002], // 1.5 subnormal steps: ties to even (2)
    [0.1, 0x2e66],
    [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next half: ties to even
    [1 + 3 * 2 ** -11, 0x3c02],
  ])("%d encodes as half bits %i", (value, bits) => {
    expect(float32ToFloat16Bits(value)).toBe(bits);
  });

  test("NaN stays NaN", () => {
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(Number.NaN)))).toBe(true);
  });

  test("every finite half decodes and re-encodes to itself", () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue; // inf/NaN
      expect(float32ToFloat16Bits(float16BitsToFloat32(bits))).toBe(bits);
    }
  });

  test("encoding keeps relative error within half an ulp (2^-11)", () => {
    const values = seededValues(4096, 7, 100);
    const decoded = decodeTensorBytes(1, encodeTensorChunk("f16", values), values.length);
    for (let index = 0; index < values.length; index++) {
      const value = values[index]!;
      expect(Math.abs(decoded[index]! - value)).toBeLessThanOrEqual(Math.abs(value) * 2 ** -11 + 2 ** -25);
    }
  });
});

describe("Q8_0", () => {
  test("a block is an f16 scale max|x|/127 and 32 int8 values", () => {
    const values = new Float32Array(QK8_0);
    for (let index = 0; index < QK8_0; index++) values[index] = (index - 16) / 16; // -1 .. 0.9375
    const bytes = quantizeQ8_0(values);
    expect(bytes.length).toBe(34);
    expect(float16BitsToFloat32(bytes.readUInt16LE(0))).toBeCloseTo(1 / 127, 6);
    expect(bytes.readInt8(2)).toBe(-127); // -1
    expect(bytes.readInt8(2 + 16)).toBe(0);
    // 1/16 * 127 = 7.9375 → 8
    expect(bytes.readInt8(2 + 17)).toBe(8);
  });

  test("halves round away from zero, like C's roundf", () => {
    const values = new Float32Array(QK8_0);
    values[0] = 127; // scale exactly 1
    values[1] = 2.5;
    values[2] = -2.5;
    const bytes = quantizeQ8_0(values);
    expect(bytes.readInt8(3)).toBe(3);
    expect(bytes.readInt8(4)).toBe(-3);
  });

  test("an all-zero block has scale 0 and decodes to zeros", () => {
    const bytes = quantizeQ8_0(new Float32Array(QK8_0));
    expect(bytes.readUInt16LE(0)).toBe(0);
    expect([...dequantizeQ8_0(bytes, QK8_0)].every((value) => value === 0)).toBe(true);
  });

  test("dequantized values are within half a step plus the f16 rounding of the scale", () => {
    for (const scale of [1e-3, 0.05, 1, 300]) {
      const values = seededValues(QK8_0 * 256, 42, scale);
      const decoded = dequantizeQ8_0(quantizeQ8_0(values), values.length);
      for (let block = 0; block < values.length / QK8_0; block++) {
        const slice = values.subarray(block * QK8_0, (block + 1) * QK8_0);
        const step = Math.max(...slice.map(Math.abs)) / 127;
        for (let index = 0; index < QK8_0; index++) {
          const at = block * QK8_0 + index;
          // Half a step from rounding to int8, plus up to 127 times the error of storing the
          // scale as f16: half an ulp relative (2^-11), or 2^-25 absolute where it is subnormal.
          const bound = 0.5 * step + 127 * (step * 2 ** -11 + 2 ** -25) + 1e-12;
          expect(Math.abs(decoded[at]! - values[at]!)).toBeLessThanOrEqual(bound);
        }
      }
    }
  });

  test("a length that is not a whole number of blocks is refused", () => {
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(RangeError);
  });
});
