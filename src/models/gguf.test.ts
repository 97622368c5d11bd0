// GGUF reader/writer tests: round trips of every metadata value type and tensor type, alignment,
// and the errors for files that are not GGUF, cut off, of an unknown version or architecture.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { ModelError, type ModelErrorCode } from "./errors.js";
import {
  type GgufMetadata,
  type GgufTensorToWrite,
  type GgufValue,
  gv,
  plainValue,
  readGguf,
  readTensorBytes,
  readTensorFloat32,
  writeGguf,
} from "./gguf.js";
import { inspectModel } from "./inspect.js";
import { decodeTensorBytes, dequantizeQ8_0, encodeTensorChunk, quantizeQ8_0 } from "./tensor-types.js";

const directory = mkdtempSync(join(tmpdir(), "berth-gguf-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function seededValues(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const values = new Float32Array(count);
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[index] = (state / 4294967296 - 0.5) * 4;
  }
  return values;
}

async function expectModelError(promise: Promise<unknown>, code: ModelErrorCode): Promise<ModelError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ModelError);
  expect((error as ModelError).code).toBe(code);
  return error as ModelError;
}

const everyValueType: Array<[string, GgufValue]> = [
  ["test.uint8", gv.u8(255)],
  ["test.int8", gv.i8(-128)],
  ["test.uint16", gv.u16(65535)],
  ["test.int16", gv.i16(-32768)],
  ["test.uint32", gv.u32(4294967295)],
  ["test.int32", gv.i32(-2147483648)],
  ["test.float32", gv.f32(1.5)],
  ["test.float64", gv.f64(Math.PI)],
  ["test.uint64", gv.u64(18446744073709551615n)],
  ["test.int64", gv.i64(-9223372036854775808n)],
  ["test.bool.true", gv.bool(true)],
  ["test.bool.false", gv.bool(false)],
  ["test.string", gv.str("héllo, 世界 ✓")],
  ["test.string.empty", gv.str("")],
  ["test.array.strings", gv.strings(["a", "", "Ġthe"])],
  ["test.array.int32", gv.i32s([1, -2, 3])],
  ["test.array.float32", gv.f32s([0.25, -8])],
  ["test.array.empty", gv.strings([])],
  ["test.array.uint8", { type: "array", itemType: "uint8", value: [0, 1, 255] }],
  ["test.array.int64", { type: "array", itemType: "int64", value: [-1n, 2n ** 62n] }],
  ["test.array.bool", { type: "array", itemType: "bool", value: [true, false] }],
  ["test.array.float64", { type: "array", itemType: "float64", value: [1e300, -1e-300] }],
  [
    "test.array.nested",
    {
      type: "array",
      itemType: "array",
      value: [gv.i32s([1, 2]), gv.strings(["x"]), { type: "array", itemType: "array", value: [gv.f32s([])] }],
    },
  ],
];

function metadataOf(entries: Array<[string, GgufValue]>): GgufMetadata {
  return new Map(entries);
}

describe("round trip", () => {
  test("every metadata value type, in order", async () => {
    const path = join(directory, "values.gguf");
    const metadata = metadataOf([["general.architecture", gv.str("gpt2")], ...everyValueType]);
    await writeGguf(path, { metadata, tensors: [] });
    const file = await readGguf(path);
    expect(file.version).toBe(3);
    expect([...file.metadata.keys()]).toEqual([...metadata.keys()]);
    expect(file.metadata).toEqual(metadata);
    expect(plainValue(file.metadata.get("test.array.nested"))).toEqual([[1, 2], ["x"], [[]]]);
  });

  test("values outside their type's range are refused when writing", async () => {
    const path = join(directory, "bad-value.gguf");
    for (const value of [gv.u8(256), gv.i8(-129), gv.u32(-1), gv.i32(1.5), gv.u16(Number.NaN)]) {
      await expectModelError(
        writeGguf(path, { metadata: metadataOf([["bad", value]]), tensors: [] }),
        "BERTH_MODEL_INVALID",
      );
    }
  });

  test.each([
    ["default alignment 32", undefined],
    ["general.alignment 64", 64],
  ])("f32, f16 and q8_0 tensors with %s", async (_, alignment) => {
    const path = join(directory, `tensors-${alignment ?? 32}.gguf`);
    const metadata = metadataOf([["general.architecture", gv.str("llama")]]);
    if (alignment !== undefined) metadata.set("general.alignment", gv.u32(alignment));
    const f32 = seededValues(3 * 5, 1); // odd sizes force padding between tensors
    const f16 = seededValues(7 * 2, 2);
    const q8 = seededValues(64 * 3, 3);
    // Produced in chunks, as the tiny model writer does.
    const tensors: GgufTensorToWrite[] = [
      { name: "a.f32", ne: [5, 3], type: "f32", values: f32 },
      { name: "b.f16", ne: [7, 2], type: "f16", values: f16 },
      {
        name: "c.q8_0",
        ne: [64, 3],
        type: "q8_0",
        values: function* chunks() {
          for (let row = 0; row < 3; row++) yield q8.subarray(row * 64, (row + 1) * 64);
        },
      },
    ];
    await writeGguf(path, { metadata, tensors });
    const file = await readGguf(path);
    const expectedAlignment = alignment ?? 32;
    expect(file.alignment).toBe(expectedAlignment);
    expect(file.dataOffset % expectedAlignment).toBe(0);
    expect(file.tensors.map(({ name, ne, typeName }) => ({ name, ne, typeName }))).toEqual([
      { name: "a.f32", ne: [5, 3], typeName: "f32" },
      { name: "b.f16", ne: [7, 2], typeName: "f16" },
      { name: "c.q8_0", ne: [64, 3], typeName: "q8_0" },
    ]);
    for (const tensor of file.tensors) expect(tensor.offset % expectedAlignment).toBe(0);
    expect(file.tensors[2]!.byteSize).toBe(6 * 34);

    expect(await readTensorFloat32(file, "a.f32")).toEqual(f32);
    const f16Read = await readTensorFloat32(file, "b.f16");
    expect(f16Read).toEqual(decodeTensorBytes(1, encodeTensorChunk("f16", f16), f16.length));
    for (let index = 0; index < f16.length; index++) expect(f16Read[index]).toBeCloseTo(f16[index]!, 2);
    // Q8_0 bytes are exactly what the quantizer produced, and decode like dequantizeQ8_0 says.
    expect(await readTensorBytes(file, "c.q8_0")).toEqual(quantizeQ8_0(q8));
    expect(await readTensorFloat32(file, "c.q8_0")).toEqual(dequantizeQ8_0(quantizeQ8_0(q8), q8.length));
  });

  test("a producer that yields the wrong number of values is refused", async () => {
    const path = join(directory, "short.gguf");
    await expectModelError(
      writeGguf(path, {
        metadata: new Map(),
        tensors: [{ name: "t", ne: [32, 2], type: "f32", values: new Float32Array(32) }],
      }),
      "BERTH_MODEL_INVALID",
    );
  });

  test("q8_0 rows must be whole blocks of 32", async () => {
    const path = join(directory, "rows.gguf");
    await expectModelError(
      writeGguf(path, {
        metadata: new Map(),
        tensors: [{ name: "t", ne: [48, 2], type: "q8_0", values: new Float32Array(96) }],
      }),
      "BERTH_MODEL_INVALID",
    );
  });

  test("reading the header does not read the tensor data (a sparse 5 GB file)", async () => {
    // A 5 GB file is larger than any Buffer Node 20 can allocate, so a reader that loaded the
    // whole file would fail; the header reader must only read what it parses.
    const path = join(directory, "sparse.gguf");
    await writeGguf(path, {
      metadata: metadataOf([["general.architecture", gv.str("gpt2")]]),
      tensors: [{ name: "t", ne: [32], type: "f32", values: new Float32Array(32) }],
    });
    truncateSync(path, 5 * 1024 ** 3);
    const file = await readGguf(path);
    expect(file.fileSize).toBe(5 * 1024 ** 3);
    expect(file.tensors[0]!.name).toBe("t");
  });
});

describe("errors", () => {
  const validPath = join(directory, "valid.gguf");

  async function writeValid(): Promise<Buffer> {
    await writeGguf(validPath, {
      metadata: metadataOf([["general.architecture", gv.str("gpt2")], ...everyValueType]),
      tensors: [
        { name: "w", ne: [64, 4], type: "q8_0", values: seededValues(256, 9) },
        { name: "b", ne: [64], type: "f32", values: seededValues(64, 10) },
      ],
    });
    return readFileSync(validPath);
  }

  test("random bytes are not GGUF", async () => {
    const path = join(directory, "random.bin");
    for (let attempt = 0; attempt < 5; attempt++) {
      const bytes = randomBytes(4096);
      if (bytes.subarray(0, 4).toString("latin1") === "GGUF") continue;
      writeFileSync(path, bytes);
      const error = await expectModelError(readGguf(path), "BERTH_MODEL_NOT_GGUF");
      expect(error.message).toContain(path);
    }
  });

  test("an empty file and a text file are not GGUF", async () => {
    const path = join(directory, "text.txt");
    writeFileSync(path, "");
    await expectModelError(readGguf(path), "BERTH_MODEL_NOT_GGUF");
    writeFileSync(path, "hello, this is not a model\n");
    await expectModelError(readGguf(path), "BERTH_MODEL_NOT_GGUF");
  });

  test("a missing file", async () => {
    await expectModelError(readGguf(join(directory, "missing.gguf")), "BERTH_MODEL_NOT_FOUND");
  });

  test("a file cut off anywhere is reported as truncated", async () => {
    const bytes = await writeValid();
    const file = await readGguf(validPath);
    const cutPath = join(directory, "cut.gguf");
    // In the magic, the version, the counts, keys, values, nested arrays, tensor infos, padding,
    // the first tensor's data and one byte before the end.
    const offsets = [
      2,
      6,
      10,
      20,
      30,
      60,
      200,
      400,
      file.dataOffset - 1,
      file.dataOffset + 10,
      bytes.length - 1,
    ];
    for (let at = 0; at < file.dataOffset; at += 37) offsets.push(at);
    for (const offset of offsets) {
      if (offset < 1) continue;
      writeFileSync(cutPath, bytes.subarray(0, offset));
      const error = await expectModelError(readGguf(cutPath), "BERTH_MODEL_TRUNCATED");
      expect(error.message).toMatch(/bytes/);
    }
    // The full file still reads.
    writeFileSync(cutPath, bytes);
    expect((await readGguf(cutPath)).tensors).toHaveLength(2);
  });

  test("GGUF version 1 and big-endian files are refused", async () => {
    const bytes = await writeValid();
    const path = join(directory, "version.gguf");
    const v1 = Buffer.from(bytes);
    v1.writeUInt32LE(1, 4);
    writeFileSync(path, v1);
    await expectModelError(readGguf(path), "BERTH_MODEL_UNSUPPORTED_VERSION");
    const bigEndian = Buffer.from(bytes);
    bigEndian.writeUInt32BE(3, 4);
    writeFileSync(path, bigEndian);
    const error = await expectModelError(readGguf(path), "BERTH_MODEL_UNSUPPORTED_VERSION");
    expect(error.message).toContain("big-endian");
  });

  test("an unknown metadata value type is corrupt", async () => {
    const path = join(directory, "corrupt.gguf");
    await writeGguf(path, { metadata: metadataOf([["k", gv.u32(1)]]), tensors: [] });
    const handle = await open(path, "r+");
    // magic 4 + version 4 + counts 16 + key length 8 + key 1 = the value type's offset.
    await handle.write(Buffer.from([99, 0, 0, 0]), 0, 4, 33);
    await handle.close();
    await expectModelError(readGguf(path), "BERTH_MODEL_CORRUPT");
  });

  test("an architecture llama.cpp does not know is refused by inspect, known ones pass", async () => {
    const path = join(directory, "arch.gguf");
    await writeGguf(path, {
      metadata: metadataOf([["general.architecture", gv.str("not-a-real-architecture")]]),
      tensors: [],
    });
    // The plain reader reads any architecture; inspect is the check.
    expect((await readGguf(path)).metadata.get("general.architecture")).toEqual(
      gv.str("not-a-real-architecture"),
    );
    const error = await expectModelError(inspectModel(path), "BERTH_MODEL_UNSUPPORTED_ARCH");
    expect(error.message).toContain("not-a-real-architecture");

    await writeGguf(path, { metadata: new Map(), tensors: [] });
    await expectModelError(inspectModel(path), "BERTH_MODEL_UNSUPPORTED_ARCH");

    for (const architecture of ["gpt2", "llama", "qwen2", "phi3", "gemma", "mistral3"]) {
      await writeGguf(path, {
        metadata: metadataOf([["general.architecture", gv.str(architecture)]]),
        tensors: [],
      });
      expect((await inspectModel(path)).architecture).toBe(architecture);
    }
  });
});
