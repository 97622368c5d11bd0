// safetensors checkpoints: finding the weight files of a Hugging Face checkpoint directory (one
// file or shards listed by the index JSON), validating their headers, and streaming one tensor's
// values as float32 chunks, so a model is never in memory whole.
import { type FileHandle, open, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { ModelError } from "../errors.js";
import { float16BitsToFloat32 } from "../tensor-types.js";

/** The element types the converter reads; others are refused when a tensor of that type is used. */
export const READABLE_DTYPES = { F32: 4, F16: 2, BF16: 2 } as const;
export type ReadableDtype = keyof typeof READABLE_DTYPES;
/** Every dtype the safetensors format defines, with its element size. */
const KNOWN_DTYPES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

// A header larger than this is not a real checkpoint's (llama.cpp's and the Rust crate's limit).
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface CheckpointTensor {
  name: string;
  dtype: string;
  /** Row-major shape as stored (PyTorch order). */
  shape: number[];
  file: string;
  /** Absolute byte offset of the data in the file. */
  start: number;
  byteLength: number;
}

export interface Checkpoint {
  dir: string;
  /** The weight files, for messages ("model-00001-of-00002.safetensors, ..."). */
  files: string[];
  tensors: Map<string, CheckpointTensor>;
}

const PICKLE_FILE = /\.(bin|pt|pth|ckpt|pkl)$/;

/** Finds and validates the safetensors weights of a checkpoint directory (headers only). */
export async function openCheckpoint(dir: string): Promise<Checkpoint> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (error) {
    throw new ModelError("BERTH_CHECKPOINT_NOT_FOUND", (error as Error).message, dir);
  }
  const indexName = names.find((name) => name.endsWith(".safetensors.index.json"));
  let files: string[];
  if (indexName !== undefined) {
    files = await shardsFromIndex(join(dir, indexName));
  } else {
    files = names.filter((name) => name.endsWith(".safetensors"));
    if (files.includes("model.safetensors")) files = ["model.safetensors"];
  }
  if (files.length === 0) {
    const pickles = names.filter((name) => PICKLE_FILE.test(name));
    if (pickles.length > 0) {
      throw new ModelError(
        "BERTH_CHECKPOINT_PICKLE",
        `${pickles.join(", ")} is PyTorch's pickle format, and loading a pickle runs whatever code it contains, so Berth does not open it. ` +
          "Use the repository's safetensors weights if it has them (model.safetensors), or convert the checkpoint once in a sandbox you trust " +
          "(transformers: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)) and convert that",
        join(dir, pickles[0]!),
      );
    }
    throw new ModelError(
      "BERTH_CHECKPOINT_NOT_FOUND",
      "no model.safetensors, no *.safetensors.index.json and no *.safetensors file in the directory",
      dir,
    );
  }
  const tensors = new Map<string, CheckpointTensor>();
  for (const file of files) {
    for (const tensor of await readSafetensorsHeader(join(dir, file))) {
      const earlier = tensors.get(tensor.name);
      if (earlier) {
        throw new ModelError(
          "BERTH_CHECKPOINT_CORRUPT",
          `tensor "${tensor.name}" is in both ${earlier.file} and ${tensor.file}`,
          tensor.file,
        );
      }
      tensors.set(tensor.name, tensor);
    }
  }
  return { dir, files: files.map((file) => join(dir, file)), tensors };
}

async function shardsFromIndex(indexPath: string): Promise<string[]> {
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (error) {
    throw new ModelError(
      "BERTH_CHECKPOINT_CORRUPT",
      `the index is not JSON: ${(error as Error).message}`,
      indexPath,
    );
  }
  const weightMap = (index as { weight_map?: unknown })?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null) {
    throw new ModelError("BERTH_CHECKPOINT_CORRUPT", "the index has no weight_map object", indexPath);
  }
  const files = new Set<string>();
  for (const [tensor, file] of Object.entries(weightMap)) {
    if (
      typeof file !== "string" ||
      file.includes("/") ||
      file.includes("\\") ||
      !file.endsWith(".safetensors")
    ) {
      throw new ModelError(
        "BERTH_CHECKPOINT_CORRUPT",
        `weight_map entry for tensor "${tensor}" is not a .safetensors file name in the directory`,
        indexPath,
      );
    }
    files.add(file);
  }
  return [...files].sort();
}

/** Reads and validates one safetensors file's header: every tensor's dtype, shape and bounds. */
export async function readSafetensorsHeader(path: string): Promise<CheckpointTensor[]> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ModelError(
      code === "ENOENT" ? "BERTH_CHECKPOINT_NOT_FOUND" : "BERTH_CHECKPOINT_CORRUPT",
      (error as Error).message,
      path,
    );
  }
  try {
    const { size } = await handle.stat();
    if (size < 8) {
      throw new ModelError(
        "BERTH_CHECKPOINT_TRUNCATED",
        `the file has ${size} bytes, fewer than the 8-byte header length`,
        path,
      );
    }
    const lengthBytes = Buffer.alloc(8);
    await handle.read(lengthBytes, 0, 8, 0);
    const headerLength = lengthBytes.readBigUInt64LE(0);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new ModelError(
        "BERTH_CHECKPOINT_CORRUPT",
        `the header claims ${headerLength} bytes (at most ${MAX_HEADER_BYTES})`,
        path,
      );
    }
    const length = Number(headerLength);
    if (8 + length > size) {
      throw new ModelError(
        "BERTH_CHECKPOINT_TRUNCATED",
        `the header claims ${length} bytes but the file has ${size - 8} after the length`,
        path,
      );
    }
    const headerBytes = Buffer.alloc(length);
    await handle.read(headerBytes, 0, length, 8);
    let header: unknown;
    try {
      header = JSON.parse(headerBytes.toString("utf8"));
    } catch (error) {
      throw new ModelError(
        "BERTH_CHECKPOINT_CORRUPT",
        `the header is not JSON: ${(error as Error).message}`,
        path,
      );
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) {
      throw new ModelError("BERTH_CHECKPOINT_CORRUPT", "the header is not a JSON object", path);
    }
    const dataStart = 8 + length;
    const dataBytes = size - dataStart;
    const tensors: CheckpointTensor[] = [];
    for (const [name, entry] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      tensors.push(parseEntry(name, entry, path, dataStart, dataBytes));
    }
    return tensors;
  } finally {
    await handle.close();
  }
}

function parseEntry(
  name: string,
  entry: unknown,
  path: string,
  dataStart: number,
  dataBytes: number,
): CheckpointTensor {
  const bad = (detail: string): ModelError =>
    new ModelError("BERTH_CHECKPOINT_CORRUPT", `tensor "${name}": ${detail}`, path);
  if (typeof entry !== "object" || entry === null) throw bad("its header entry is not an object");
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== "string" || !(dtype in KNOWN_DTYPES)) {
    throw new ModelError(
      "BERTH_CHECKPOINT_DTYPE",
      `tensor "${name}" has dtype ${JSON.stringify(dtype)}, which safetensors does not define (the converter reads ${Object.keys(READABLE_DTYPES).join(", ")})`,
      path,
    );
  }
  if (!Array.isArray(shape) || shape.some((dim) => !Number.isSafeInteger(dim) || dim < 0)) {
    throw bad(`shape ${JSON.stringify(shape)} is not a list of sizes`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((offset) => Number.isSafeInteger(offset) && offset >= 0) ||
    offsets[1] < offsets[0]
  ) {
    throw bad(`data_offsets ${JSON.stringify(offsets)} are not [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  const elementCount = (shape as number[]).reduce((product, dim) => product * dim, 1);
  const expectedBytes = elementCount * KNOWN_DTYPES[dtype]!;
  if (end - begin !== expectedBytes) {
    throw bad(`shape [${shape}] of ${dtype} needs ${expectedBytes} bytes, data_offsets span ${end - begin}`);
  }
  if (end > dataBytes) {
    throw new ModelError(
      "BERTH_CHECKPOINT_TRUNCATED",
      `tensor "${name}" ends at data byte ${end}, the file holds ${dataBytes} data bytes`,
      path,
    );
  }
  return {
    name,
    dtype,
    shape: shape as number[],
    file: path,
    start: dataStart + begin,
    byteLength: end - begin,
  };
}

// f16 → f32 by table: 65536 entries, far faster than decoding bits per value.
let halfTable: Float32Array | undefined;
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) table[bits] = float16BitsToFloat32(bits);
  halfTable = table;
  return table;
}

/** Decodes little-endian F32/F16/BF16 bytes into a new Float32Array. */
export function decodeToFloat32(dtype: ReadableDtype, bytes: Buffer): Float32Array {
  const count = bytes.length / READABLE_DTYPES[dtype];
  const out = new Float32Array(count);
  if (dtype === "F32") {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const halves =
    bytes.byteOffset % 2 === 0
      ? new Uint16Array(bytes.buffer, bytes.byteOffset, count)
      : new Uint16Array(new Uint8Array(bytes).buffer);
  if (dtype === "F16") {
    const table = halfToFloatTable();
    for (let index = 0; index < count; index++) out[index] = table[halves[index]!]!;
    return out;
  }
  // bf16 is the high half of a float32.
  const bits = new Uint32Array(out.buffer);
  for (let index = 0; index < count; index++) bits[index] = halves[index]! << 16;
  return out;
}

/** Opens checkpoint files on demand and reads tensors as float32, whole or in chunks. */
export class TensorReader {
  private readonly handles = new Map<string, Promise<FileHandle>>();

  private handle(file: string): Promise<FileHandle> {
    let handle = this.handles.get(file);
    if (!handle) {
      handle = open(file, "r");
      this.handles.set(file, handle);
    }
    return handle;
  }

  private checkDtype(tensor: CheckpointTensor): ReadableDtype {
    if (!(tensor.dtype in READABLE_DTYPES)) {
      throw new ModelError(
        "BERTH_CHECKPOINT_DTYPE",
        `tensor "${tensor.name}" is ${tensor.dtype}; the converter reads ${Object.keys(READABLE_DTYPES).join(", ")}`,
        tensor.file,
      );
    }
    return tensor.dtype as ReadableDtype;
  }

  private async readBytes(tensor: CheckpointTensor, offset: number, length: number): Promise<Buffer> {
    const handle = await this.handle(tensor.file);
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(
        buffer,
        filled,
        length - filled,
        tensor.start + offset + filled,
      );
      if (bytesRead === 0) {
        throw new ModelError(
          "BERTH_CHECKPOINT_TRUNCATED",
          `tensor "${tensor.name}": the file ended while reading its data`,
          tensor.file,
        );
      }
      filled += bytesRead;
    }
    return buffer;
  }

  async readAll(tensor: CheckpointTensor): Promise<Float32Array> {
    const dtype = this.checkDtype(tensor);
    return decodeToFloat32(dtype, await this.readBytes(tensor, 0, tensor.byteLength));
  }

  /** Values in row-major order, `chunkValues` at a time (the last chunk may be shorter). */
  async *chunks(tensor: CheckpointTensor, chunkValues: number): AsyncGenerator<Float32Array> {
    const dtype = this.checkDtype(tensor);
    const elementSize = READABLE_DTYPES[dtype];
    const chunkBytes = Math.max(1, chunkValues) * elementSize;
    for (let offset = 0; offset < tensor.byteLength; offset += chunkBytes) {
      const length = Math.min(chunkBytes, tensor.byteLength - offset);
      yield decodeToFloat32(dtype, await this.readBytes(tensor, offset, length));
    }
  }

  async close(): Promise<void> {
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map(async (handle) => (await handle.catch(() => undefined))?.close()));
  }
}

/** Reads a JSON file of the checkpoint, or undefined when it does not exist. */
export async function readJsonFile(path: string): Promise<unknown> {
  try {
    await stat(path);
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new ModelError("BERTH_CHECKPOINT_CONFIG", `not valid JSON: ${(error as Error).message}`, path);
  }
}
