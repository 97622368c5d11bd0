// GGUF (v3) files: reading header, metadata and tensor infos from offsets without loading the
// file, reading one tensor's data, and writing files whose tensor data is streamed from producers.
import { type FileHandle, open } from "node:fs/promises";
import { ModelError } from "./errors.js";
import {
  decodeTensorBytes,
  encodeTensorChunk,
  GGML_TYPES,
  type GgmlTypeInfo,
  ggmlTypeInfo,
} from "./tensor-types.js";

export const GGUF_MAGIC = "GGUF";
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Value type codes of GGUF metadata: the index in this list is the code stored in the file. */
export const GGUF_VALUE_TYPES = [
  "uint8",
  "int8",
  "uint16",
  "int16",
  "uint32",
  "int32",
  "float32",
  "bool",
  "string",
  "array",
  "uint64",
  "int64",
  "float64",
] as const;

export type GgufValueTypeName = (typeof GGUF_VALUE_TYPES)[number];
type NumberTypeName = "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32" | "float32" | "float64";
type BigIntTypeName = "uint64" | "int64";

export type GgufScalar =
  | { type: NumberTypeName; value: number }
  | { type: BigIntTypeName; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string };

export type GgufArray =
  | { type: "array"; itemType: NumberTypeName; value: number[] }
  | { type: "array"; itemType: BigIntTypeName; value: bigint[] }
  | { type: "array"; itemType: "bool"; value: boolean[] }
  | { type: "array"; itemType: "string"; value: string[] }
  | { type: "array"; itemType: "array"; value: GgufArray[] };

export type GgufValue = GgufScalar | GgufArray;
/** Metadata in file order (a Map keeps insertion order, so a round trip keeps it too). */
export type GgufMetadata = Map<string, GgufValue>;

/** Short constructors for typed metadata values. */
export const gv = {
  u8: (value: number): GgufValue => ({ type: "uint8", value }),
  i8: (value: number): GgufValue => ({ type: "int8", value }),
  u16: (value: number): GgufValue => ({ type: "uint16", value }),
  i16: (value: number): GgufValue => ({ type: "int16", value }),
  u32: (value: number): GgufValue => ({ type: "uint32", value }),
  i32: (value: number): GgufValue => ({ type: "int32", value }),
  f32: (value: number): GgufValue => ({ type: "float32", value }),
  f64: (value: number): GgufValue => ({ type: "float64", value }),
  u64: (value: bigint | number): GgufValue => ({ type: "uint64", value: BigInt(value) }),
  i64: (value: bigint | number): GgufValue => ({ type: "int64", value: BigInt(value) }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  str: (value: string): GgufValue => ({ type: "string", value }),
  strings: (value: string[]): GgufArray => ({ type: "array", itemType: "string", value }),
  i32s: (value: number[]): GgufArray => ({ type: "array", itemType: "int32", value }),
  f32s: (value: number[]): GgufArray => ({ type: "array", itemType: "float32", value }),
};

export interface GgufTensorInfo {
  name: string;
  /** ggml dimension order: ne[0] is the innermost (row length), the reverse of row-major shapes. */
  ne: number[];
  /** ggml type code (0 f32, 1 f16, 8 q8_0, ...). */
  type: number;
  typeName: string;
  /** Offset of the data relative to the start of the data section. */
  offset: number;
  elementCount: number;
  byteSize: number;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: GgufMetadata;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
  fileSize: number;
}

// ---------------------------------------------------------------------------------------------
// Reading

const READ_CHUNK_BYTES = 1 << 20;
const MAX_DIMS = 4; // GGML_MAX_DIMS
const MAX_ARRAY_NESTING = 16;
/** The fewest bytes one array item of each type takes (a string's or array's length prefix). */
const MIN_ITEM_BYTES: Record<GgufValueTypeName, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  bool: 1,
  string: 8,
  array: 12,
  uint64: 8,
  int64: 8,
  float64: 8,
};
const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Reads forward through a file in chunks, so inspecting metadata never loads the tensor data. */
class FileCursor {
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;
  position = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly fileSize: number,
    private readonly path: string,
  ) {}

  get remaining(): number {
    return this.fileSize - this.position;
  }

  truncated(what: string): ModelError {
    return new ModelError(
      "BERTH_MODEL_TRUNCATED",
      `reading ${what} at byte ${this.position} needs more than the ${this.fileSize} bytes the file has`,
      this.path,
    );
  }

  private async need(byteCount: number, what: string): Promise<void> {
    if (this.position + byteCount > this.fileSize) throw this.truncated(what);
    if (
      this.position + byteCount <= this.bufferStart + this.buffer.length &&
      this.position >= this.bufferStart
    ) {
      return;
    }
    const length = Math.min(Math.max(byteCount, READ_CHUNK_BYTES), this.fileSize - this.position);
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await this.handle.read(buffer, 0, length, this.position);
    if (bytesRead < byteCount) throw this.truncated(what);
    this.buffer = buffer.subarray(0, bytesRead);
    this.bufferStart = this.position;
  }

  private take(byteCount: number): number {
    const at = this.position - this.bufferStart;
    this.position += byteCount;
    return at;
  }

  async bytes(byteCount: number, what: string): Promise<Buffer> {
    await this.need(byteCount, what);
    const at = this.take(byteCount);
    return this.buffer.subarray(at, at + byteCount);
  }

  async u32(what: string): Promise<number> {
    await this.need(4, what);
    return this.buffer.readUInt32LE(this.take(4));
  }

  async u64(what: string): Promise<bigint> {
    await this.need(8, what);
    return this.buffer.readBigUInt64LE(this.take(8));
  }

  /** A uint64 count or size that must fit a safe JS integer. */
  async size(what: string): Promise<number> {
    const value = await this.u64(what);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new ModelError("BERTH_MODEL_CORRUPT", `${what} is ${value}, larger than any file`, this.path);
    }
    return Number(value);
  }

  async string(what: string): Promise<string> {
    const length = await this.size(`${what} length`);
    if (length > this.remaining) throw this.truncated(what);
    return utf8.decode(await this.bytes(length, what));
  }

  async scalar(type: Exclude<GgufValueTypeName, "array">, what: string): Promise<GgufScalar["value"]> {
    switch (type) {
      case "uint8":
        await this.need(1, what);
        return this.buffer.readUInt8(this.take(1));
      case "int8":
        await this.need(1, what);
        return this.buffer.readInt8(this.take(1));
      case "uint16":
        await this.need(2, what);
        return this.buffer.readUInt16LE(this.take(2));
      case "int16":
        await this.need(2, what);
        return this.buffer.readInt16LE(this.take(2));
      case "uint32":
        return this.u32(what);
      case "int32":
        await this.need(4, what);
        return this.buffer.readInt32LE(this.take(4));
      case "float32":
        await this.need(4, what);
        return this.buffer.readFloatLE(this.take(4));
      case "float64":
        await this.need(8, what);
        return this.buffer.readDoubleLE(this.take(8));
      case "uint64":
        return this.u64(what);
      case "int64":
        await this.need(8, what);
        return this.buffer.readBigInt64LE(this.take(8));
      case "bool": {
        await this.need(1, what);
        const byte = this.buffer.readUInt8(this.take(1));
        if (byte > 1)
          throw new ModelError("BERTH_MODEL_CORRUPT", `${what} is a bool of value ${byte}`, this.path);
        return byte === 1;
      }
      case "string":
        return this.string(what);
    }
  }

  async valueType(what: string): Promise<GgufValueTypeName> {
    const code = await this.u32(`${what} type`);
    const name = GGUF_VALUE_TYPES[code];
    if (name === undefined) {
      throw new ModelError("BERTH_MODEL_CORRUPT", `${what} has unknown value type ${code}`, this.path);
    }
    return name;
  }

  async value(type: GgufValueTypeName, what: string): Promise<GgufValue> {
    if (type !== "array") return { type, value: await this.scalar(type, what) } as GgufScalar;
    return this.array(what);
  }

  async array(what: string, depth = 0): Promise<GgufArray> {
    // Nesting is legal but rare (llama.cpp reads none); a bound keeps a crafted file off the stack.
    if (depth >= MAX_ARRAY_NESTING) {
      throw new ModelError("BERTH_MODEL_CORRUPT", `${what} nests arrays ${depth} deep`, this.path);
    }
    const itemType = await this.valueType(`${what} item`);
    const count = await this.size(`${what} count`);
    // Every item takes at least its fixed size: a count beyond the rest of the file is a cut-off file
    // (checked before allocating, so a crafted count cannot ask for gigabytes).
    if (count * MIN_ITEM_BYTES[itemType] > this.remaining) throw this.truncated(what);
    const items: unknown[] = new Array(count);
    for (let index = 0; index < count; index++) {
      items[index] =
        itemType === "array"
          ? await this.array(`${what}[${index}]`, depth + 1)
          : await this.scalar(itemType, what);
    }
    return { type: "array", itemType, value: items } as GgufArray;
  }
}

/** Reads a GGUF file's header, metadata and tensor infos; checks the tensor data fits in the file. */
export async function readGguf(path: string): Promise<GgufFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new ModelError("BERTH_MODEL_NOT_FOUND", "no such file", path);
    }
    throw error;
  }
  try {
    const { size: fileSize } = await handle.stat();
    const cursor = new FileCursor(handle, fileSize, path);
    await checkMagic(handle, fileSize, path);
    cursor.position = 4;
    const version = await cursor.u32("version");
    if (version !== 2 && version !== 3) {
      const detail =
        version === 0x03000000 || version === 0x02000000
          ? "big-endian GGUF files are not supported"
          : `version ${version} (supported: 2, 3)`;
      throw new ModelError("BERTH_MODEL_UNSUPPORTED_VERSION", detail, path);
    }
    const tensorCount = await cursor.size("tensor count");
    const metadataCount = await cursor.size("metadata count");
    // Each metadata entry and tensor info takes well over 8 bytes: larger counts mean a cut-off file.
    if (tensorCount > cursor.remaining / 8 || metadataCount > cursor.remaining / 8) {
      throw cursor.truncated("the tensor and metadata counts");
    }

    const metadata: GgufMetadata = new Map();
    for (let index = 0; index < metadataCount; index++) {
      const key = await cursor.string(`metadata key #${index}`);
      if (metadata.has(key)) {
        throw new ModelError("BERTH_MODEL_CORRUPT", `metadata key "${key}" appears twice`, path);
      }
      const type = await cursor.valueType(`metadata "${key}"`);
      metadata.set(key, await cursor.value(type, `metadata "${key}"`));
    }

    const alignmentValue = metadata.get("general.alignment");
    let alignment = GGUF_DEFAULT_ALIGNMENT;
    if (alignmentValue !== undefined) {
      if (
        alignmentValue.type !== "uint32" ||
        alignmentValue.value === 0 ||
        !isPowerOfTwo(alignmentValue.value)
      ) {
        throw new ModelError("BERTH_MODEL_CORRUPT", "general.alignment must be a power-of-two uint32", path);
      }
      alignment = alignmentValue.value;
    }

    const tensors: GgufTensorInfo[] = [];
    for (let index = 0; index < tensorCount; index++) {
      const name = await cursor.string(`tensor name #${index}`);
      const dimCount = await cursor.u32(`tensor "${name}" dimension count`);
      if (dimCount < 1 || dimCount > MAX_DIMS) {
        throw new ModelError("BERTH_MODEL_CORRUPT", `tensor "${name}" has ${dimCount} dimensions`, path);
      }
      const ne: number[] = [];
      for (let dim = 0; dim < dimCount; dim++) ne.push(await cursor.size(`tensor "${name}" dimension`));
      const type = await cursor.u32(`tensor "${name}" type`);
      const offset = await cursor.size(`tensor "${name}" offset`);
      const typeInfo = ggmlTypeInfo(type);
      if (typeInfo === undefined) {
        throw new ModelError("BERTH_MODEL_CORRUPT", `tensor "${name}" has unknown ggml type ${type}`, path);
      }
      if (offset % alignment !== 0) {
        throw new ModelError("BERTH_MODEL_CORRUPT", `tensor "${name}" offset ${offset} is not aligned`, path);
      }
      const elementCount = ne.reduce((product, dim) => product * dim, 1);
      if ((ne[0] ?? 0) % typeInfo.blockSize !== 0) {
        throw new ModelError(
          "BERTH_MODEL_CORRUPT",
          `tensor "${name}" row of ${ne[0]} is not a multiple of the ${typeInfo.name} block size`,
          path,
        );
      }
      tensors.push({
        name,
        ne,
        type,
        typeName: typeInfo.name,
        offset,
        elementCount,
        byteSize: (elementCount / typeInfo.blockSize) * typeInfo.typeSize,
      });
    }

    const dataOffset = alignUp(cursor.position, alignment);
    const dataEnd = tensors.reduce(
      (end, tensor) => Math.max(end, dataOffset + tensor.offset + tensor.byteSize),
      0,
    );
    if (dataEnd > fileSize) {
      throw new ModelError(
        "BERTH_MODEL_TRUNCATED",
        `tensor data ends at byte ${dataEnd} but the file has ${fileSize} bytes`,
        path,
      );
    }
    return { path, version, metadata, tensors, alignment, dataOffset, fileSize };
  } finally {
    await handle.close();
  }
}

async function checkMagic(handle: FileHandle, fileSize: number, path: string): Promise<void> {
  const head = Buffer.alloc(4);
  const { bytesRead } = await handle.read(head, 0, 4, 0);
  const magic = head.subarray(0, bytesRead).toString("latin1");
  if (magic === GGUF_MAGIC) return;
  if (bytesRead < 4 && bytesRead > 0 && GGUF_MAGIC.startsWith(magic)) {
    throw new ModelError("BERTH_MODEL_TRUNCATED", `the file has only ${fileSize} bytes`, path);
  }
  throw new ModelError(
    "BERTH_MODEL_NOT_GGUF",
    fileSize === 0
      ? "the file is empty"
      : `it starts with bytes ${head.subarray(0, bytesRead).toString("hex")} instead of "GGUF" (47475546)`,
    path,
  );
}

/** Reads one tensor's raw bytes. */
export async function readTensorBytes(file: GgufFile, tensorName: string): Promise<Buffer> {
  const tensor = file.tensors.find((candidate) => candidate.name === tensorName);
  if (!tensor) throw new ModelError("BERTH_MODEL_INVALID", `no tensor named "${tensorName}"`, file.path);
  const handle = await open(file.path, "r");
  try {
    const bytes = Buffer.alloc(tensor.byteSize);
    const { bytesRead } = await handle.read(bytes, 0, tensor.byteSize, file.dataOffset + tensor.offset);
    if (bytesRead < tensor.byteSize) {
      throw new ModelError("BERTH_MODEL_TRUNCATED", `tensor "${tensorName}" data is cut off`, file.path);
    }
    return bytes;
  } finally {
    await handle.close();
  }
}

/** Reads one tensor as float32 values (f32, f16 and q8_0 tensors). */
export async function readTensorFloat32(file: GgufFile, tensorName: string): Promise<Float32Array> {
  const bytes = await readTensorBytes(file, tensorName);
  const tensor = file.tensors.find((candidate) => candidate.name === tensorName)!;
  return decodeTensorBytes(tensor.type, bytes, tensor.elementCount);
}

// ---------------------------------------------------------------------------------------------
// Writing

export type WritableTensorType = "f32" | "f16" | "q8_0";

/**
 * Tensor values in row-major order: all at once, or as a producer of chunks (each a whole number
 * of 32-value blocks for q8_0) so a large model never sits in memory whole.
 */
export type TensorValues = Float32Array | (() => Iterable<Float32Array> | AsyncIterable<Float32Array>);

export interface GgufTensorToWrite {
  name: string;
  /** ggml dimension order (innermost first). */
  ne: number[];
  type: WritableTensorType;
  values: TensorValues;
}

export interface GgufToWrite {
  metadata: GgufMetadata;
  tensors: GgufTensorToWrite[];
}

export interface WriteProgress {
  bytesWritten: number;
  totalBytes: number;
}

const TYPE_CODE_BY_NAME: Record<WritableTensorType, number> = { f32: 0, f16: 1, q8_0: 8 };

/** Writes a GGUF v3 file: header, metadata, tensor infos, then each tensor's data, aligned. */
export async function writeGguf(
  path: string,
  model: GgufToWrite,
  onProgress?: (progress: WriteProgress) => void,
): Promise<{ bytes: number }> {
  const alignmentValue = model.metadata.get("general.alignment");
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (alignmentValue !== undefined) {
    if (alignmentValue.type !== "uint32" || !isPowerOfTwo(alignmentValue.value)) {
      throw new ModelError("BERTH_MODEL_INVALID", "general.alignment must be a power-of-two uint32", path);
    }
    alignment = alignmentValue.value;
  }

  const layout = layoutTensors(model.tensors, alignment, path);
  const header = new ByteWriter();
  header.raw(Buffer.from(GGUF_MAGIC, "latin1"));
  header.u32(GGUF_VERSION);
  header.u64(BigInt(model.tensors.length));
  header.u64(BigInt(model.metadata.size));
  for (const [key, value] of model.metadata) {
    header.string(key);
    header.u32(GGUF_VALUE_TYPES.indexOf(value.type));
    writeValue(header, value, key);
  }
  for (const [index, tensor] of model.tensors.entries()) {
    header.string(tensor.name);
    header.u32(tensor.ne.length);
    for (const dim of tensor.ne) header.u64(BigInt(dim));
    header.u32(TYPE_CODE_BY_NAME[tensor.type]);
    header.u64(BigInt(layout.offsets[index]!));
  }
  header.pad(alignment);
  const headerBytes = header.finish();
  const totalBytes = headerBytes.length + layout.dataBytes;

  const handle = await open(path, "w");
  try {
    let bytesWritten = 0;
    const write = async (bytes: Uint8Array): Promise<void> => {
      await handle.write(bytes, 0, bytes.length, bytesWritten);
      bytesWritten += bytes.length;
      onProgress?.({ bytesWritten, totalBytes });
    };
    await write(headerBytes);
    for (const [index, tensor] of model.tensors.entries()) {
      const start = headerBytes.length + layout.offsets[index]!;
      if (bytesWritten < start) await write(Buffer.alloc(start - bytesWritten));
      let valueCount = 0;
      const chunks = typeof tensor.values === "function" ? tensor.values() : [tensor.values];
      for await (const chunk of chunks) {
        valueCount += chunk.length;
        await write(encodeTensorChunk(tensor.type, chunk));
      }
      const expected = tensor.ne.reduce((product, dim) => product * dim, 1);
      if (valueCount !== expected) {
        throw new ModelError(
          "BERTH_MODEL_INVALID",
          `tensor "${tensor.name}" produced ${valueCount} values, its shape needs ${expected}`,
          path,
        );
      }
    }
    if (bytesWritten < totalBytes) await write(Buffer.alloc(totalBytes - bytesWritten));
    return { bytes: bytesWritten };
  } finally {
    await handle.close();
  }
}

function layoutTensors(
  tensors: GgufTensorToWrite[],
  alignment: number,
  path: string,
): { offsets: number[]; dataBytes: number } {
  const offsets: number[] = [];
  let cursor = 0;
  const names = new Set<string>();
  for (const tensor of tensors) {
    if (names.has(tensor.name)) {
      throw new ModelError("BERTH_MODEL_INVALID", `tensor "${tensor.name}" appears twice`, path);
    }
    names.add(tensor.name);
    const info = GGML_TYPES[TYPE_CODE_BY_NAME[tensor.type]] as GgmlTypeInfo;
    if (
      tensor.ne.length < 1 ||
      tensor.ne.length > MAX_DIMS ||
      tensor.ne.some((dim) => !Number.isInteger(dim))
    ) {
      throw new ModelError("BERTH_MODEL_INVALID", `tensor "${tensor.name}" has shape [${tensor.ne}]`, path);
    }
    if (tensor.ne[0]! % info.blockSize !== 0) {
      throw new ModelError(
        "BERTH_MODEL_INVALID",
        `tensor "${tensor.name}" rows of ${tensor.ne[0]} are not a multiple of ${info.blockSize} (${info.name})`,
        path,
      );
    }
    const elementCount = tensor.ne.reduce((product, dim) => product * dim, 1);
    offsets.push(cursor);
    cursor = alignUp(cursor + (elementCount / info.blockSize) * info.typeSize, alignment);
  }
  return { offsets, dataBytes: cursor };
}

function writeValue(out: ByteWriter, value: GgufValue, key: string): void {
  if (value.type === "array") {
    out.u32(GGUF_VALUE_TYPES.indexOf(value.itemType));
    out.u64(BigInt(value.value.length));
    for (const item of value.value) {
      if (value.itemType === "array") writeValue(out, item as GgufArray, key);
      else writeScalar(out, { type: value.itemType, value: item } as GgufScalar, key);
    }
    return;
  }
  writeScalar(out, value, key);
}

function writeScalar(out: ByteWriter, scalar: GgufScalar, key: string): void {
  const room = out.reserve(8);
  const buffer = out.buffer;
  const checkInteger = (min: number, max: number): void => {
    const value = scalar.value as number;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ModelError(
        "BERTH_MODEL_INVALID",
        `metadata "${key}": ${value} is not a valid ${scalar.type}`,
      );
    }
  };
  switch (scalar.type) {
    case "uint8":
      checkInteger(0, 0xff);
      out.advance(buffer.writeUInt8(scalar.value, room) - room);
      return;
    case "int8":
      checkInteger(-0x80, 0x7f);
      out.advance(buffer.writeInt8(scalar.value, room) - room);
      return;
    case "uint16":
      checkInteger(0, 0xffff);
      out.advance(buffer.writeUInt16LE(scalar.value, room) - room);
      return;
    case "int16":
      checkInteger(-0x8000, 0x7fff);
      out.advance(buffer.writeInt16LE(scalar.value, room) - room);
      return;
    case "uint32":
      checkInteger(0, 0xffffffff);
      out.advance(buffer.writeUInt32LE(scalar.value, room) - room);
      return;
    case "int32":
      checkInteger(-0x80000000, 0x7fffffff);
      out.advance(buffer.writeInt32LE(scalar.value, room) - room);
      return;
    case "float32":
      out.advance(buffer.writeFloatLE(scalar.value, room) - room);
      return;
    case "float64":
      out.advance(buffer.writeDoubleLE(scalar.value, room) - room);
      return;
    case "uint64":
      out.advance(buffer.writeBigUInt64LE(BigInt.asUintN(64, scalar.value), room) - room);
      return;
    case "int64":
      out.advance(buffer.writeBigInt64LE(BigInt.asIntN(64, scalar.value), room) - room);
      return;
    case "bool":
      out.advance(buffer.writeUInt8(scalar.value ? 1 : 0, room) - room);
      return;
    case "string":
      out.string(scalar.value);
      return;
  }
}

/** A growable little-endian byte buffer for the header. */
class ByteWriter {
  buffer = Buffer.alloc(1 << 16);
  private length = 0;

  reserve(byteCount: number): number {
    if (this.length + byteCount > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + byteCount));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    return this.length;
  }

  advance(byteCount: number): void {
    this.length += byteCount;
  }

  raw(bytes: Uint8Array): void {
    const at = this.reserve(bytes.length);
    this.buffer.set(bytes, at);
    this.length += bytes.length;
  }

  u32(value: number): void {
    const at = this.reserve(4);
    this.buffer.writeUInt32LE(value, at);
    this.length += 4;
  }

  u64(value: bigint): void {
    const at = this.reserve(8);
    this.buffer.writeBigUInt64LE(value, at);
    this.length += 8;
  }

  string(value: string): void {
    const bytes = Buffer.from(value, "utf8");
    this.u64(BigInt(bytes.length));
    this.raw(bytes);
  }

  pad(alignment: number): void {
    const target = alignUp(this.length, alignment);
    const at = this.reserve(target - this.length);
    this.buffer.fill(0, at, target);
    this.length = target;
  }

  finish(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

export function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}

function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0;
}

/** A metadata value as plain JS (numbers, bigints, strings, booleans, arrays). */
export function plainValue(value: GgufValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (value.type === "array") {
    return value.itemType === "array" ? value.value.map((item) => plainValue(item)) : value.value;
  }
  return value.value;
}

/** A numeric metadata value as a JS number, or undefined when absent or not a number. */
export function metadataNumber(metadata: GgufMetadata, key: string): number | undefined {
  const value = metadata.get(key);
  if (value === undefined || value.type === "array" || value.type === "string" || value.type === "bool") {
    return undefined;
  }
  return Number(value.value);
}

export function metadataString(metadata: GgufMetadata, key: string): string | undefined {
  const value = metadata.get(key);
  return value?.type === "string" ? value.value : undefined;
}
