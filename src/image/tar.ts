// Tar for image layers and OCI archives: a deterministic writer (ustar headers, PAX records for long
// names and large files, entries in the caller's order) that streams file contents from disk, and a
// reader that indexes an archive's entries by offset without extracting it.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { ImageError } from "./errors.js";

/**
 * Where an entry's content comes from. `stamp` identifies a file's version (size and mtime) for the
 * layer cache key; it never reaches the archive.
 */
export type TarSource =
  | { kind: "buffer"; data: Buffer }
  | { kind: "file"; path: string; start?: number; stamp?: string };

export interface TarEntry {
  /** Relative path without a leading `/` or `./`; directories without a trailing `/`. */
  path: string;
  type: "file" | "directory" | "symlink";
  /** Permission bits (e.g. 0o644). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Bytes of a file's content; 0 for directories and symlinks. */
  size: number;
  linkTarget?: string;
  source?: TarSource;
}

const BLOCK = 512;
const MAX_USTAR_SIZE = 0o77777777777; // 11 octal digits
const TYPE_FLAG: Record<TarEntry["type"], string> = { file: "0", directory: "5", symlink: "2" };

function writeString(header: Buffer, offset: number, length: number, value: string): void {
  header.write(value, offset, length, "utf8");
}

function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  writeString(header, offset, length - 1, value.toString(8).padStart(length - 1, "0"));
  header[offset + length - 1] = 0;
}

function fitsUstar(text: string, max: number): boolean {
  // ASCII only, so byte length equals character length and every reader agrees on the name.
  return text.length <= max && /^[\x20-\x7e]*$/.test(text);
}

function ustarHeader(
  name: string,
  entry: TarEntry,
  typeFlag: string,
  size: number,
  linkName: string,
): Buffer {
  const header = Buffer.alloc(BLOCK);
  writeString(header, 0, 100, name);
  writeOctal(header, 100, 8, entry.mode & 0o7777);
  writeOctal(header, 108, 8, entry.uid);
  writeOctal(header, 116, 8, entry.gid);
  writeOctal(header, 124, 12, size);
  writeOctal(header, 136, 12, entry.mtime);
  header.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  header.write(typeFlag, 156, 1, "ascii");
  writeString(header, 157, 100, linkName);
  header.write("ustar\0", 257, 6, "ascii");
  header.write("00", 263, 2, "ascii");
  writeOctal(header, 329, 8, 0);
  writeOctal(header, 337, 8, 0);
  let sum = 0;
  for (const byte of header) sum += byte;
  writeString(header, 148, 7, `${sum.toString(8).padStart(6, "0")}\0`);
  header[155] = 0x20;
  return header;
}

function paxRecord(key: string, value: string): string {
  // "LEN key=value\n" where LEN counts its own digits too.
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length++;
  return `${length}${body}`;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** The header block(s) of one entry: a PAX header first when the name, link or size does not fit ustar. */
export function entryHeader(entry: TarEntry): Buffer {
  const name = entry.type === "directory" ? `${entry.path}/` : entry.path;
  const link = entry.linkTarget ?? "";
  const size = entry.type === "file" ? entry.size : 0;
  const records: string[] = [];
  if (!fitsUstar(name, 100)) records.push(paxRecord("path", name));
  if (!fitsUstar(link, 100)) records.push(paxRecord("linkpath", link));
  if (size > MAX_USTAR_SIZE) records.push(paxRecord("size", String(size)));
  const main = ustarHeader(
    fitsUstar(name, 100) ? name : name.slice(0, 99).replace(/[^\x20-\x7e]/g, "_"),
    entry,
    TYPE_FLAG[entry.type],
    size > MAX_USTAR_SIZE ? 0 : size,
    fitsUstar(link, 100) ? link : "",
  );
  if (records.length === 0) return main;
  const pax = Buffer.from(records.join(""), "utf8");
  const paxHeader = ustarHeader("PaxHeader", { ...entry, mode: 0o644, type: "file" }, "x", pax.length, "");
  return Buffer.concat([paxHeader, pax, padding(pax.length), main]);
}

async function* fileChunks(entry: TarEntry, path: string, start: number): AsyncGenerator<Buffer> {
  if (entry.size === 0) return;
  let read = 0;
  const stream = createReadStream(path, { start, end: start + entry.size - 1, highWaterMark: 1 << 20 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    read += chunk.length;
    yield chunk;
  }
  if (read !== entry.size) {
    throw new ImageError(
      "BERTH_IMAGE_INPUT_INVALID",
      `${path} changed while it was being packed (expected ${entry.size} bytes, read ${read}); build again`,
    );
  }
}

/** The archive's bytes, entry by entry, ending with the two zero blocks. Contents stream from disk. */
export async function* tarChunks(
  entries: Iterable<TarEntry> | AsyncIterable<TarEntry>,
): AsyncGenerator<Buffer> {
  for await (const entry of entries) {
    yield entryHeader(entry);
    if (entry.type !== "file" || entry.size === 0) continue;
    const source = entry.source;
    if (!source) throw new Error(`tar entry ${entry.path} has no source`);
    if (source.kind === "buffer") {
      if (source.data.length !== entry.size) throw new Error(`tar entry ${entry.path}: size mismatch`);
      yield source.data;
    } else {
      yield* fileChunks(entry, source.path, source.start ?? 0);
    }
    yield padding(entry.size);
  }
  yield Buffer.alloc(2 * BLOCK);
}

export interface IndexedTarEntry {
  type: "file" | "directory" | "symlink" | "other";
  /** Byte offset of the content in the archive file. */
  offset: number;
  size: number;
}

function readString(block: Buffer, offset: number, length: number): string {
  const slice = block.subarray(offset, offset + length);
  const end = slice.indexOf(0);
  return slice.subarray(0, end < 0 ? length : end).toString("utf8");
}

function readNumber(block: Buffer, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if ((field[0] ?? 0) & 0x80) {
    // GNU base-256 for values beyond the octal field.
    let value = 0;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] ?? 0);
    return value;
  }
  const text = readString(block, offset, length).trim();
  return text.length === 0 ? 0 : Number.parseInt(text, 8);
}

function parsePax(content: Buffer): Map<string, string> {
  // Records are "LEN key=value\n", LEN in bytes including itself.
  const records = new Map<string, string>();
  let offset = 0;
  while (offset < content.length) {
    const space = content.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number.parseInt(content.toString("ascii", offset, space), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = content.toString("utf8", space + 1, offset + length - 1);
    const equals = record.indexOf("=");
    if (equals > 0) records.set(record.slice(0, equals), record.slice(equals + 1));
    offset += length;
  }
  return records;
}

function normalizeName(name: string): string {
  return name.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
}

/**
 * Reads only the headers of a tar file and returns where each entry's content lies, so blobs can be
 * streamed from the archive in place. `describe` names the archive in errors.
 */
export async function indexTar(path: string, describe: string): Promise<Map<string, IndexedTarEntry>> {
  const entries = new Map<string, IndexedTarEntry>();
  const handle = await open(path, "r");
  try {
    const { size: fileSize } = await handle.stat();
    const block = Buffer.alloc(BLOCK);
    let position = 0;
    let pending: Map<string, string> | undefined;
    let longName: string | undefined;
    while (position + BLOCK <= fileSize) {
      const { bytesRead } = await handle.read(block, 0, BLOCK, position);
      if (bytesRead < BLOCK) break;
      if (block.every((byte) => byte === 0)) break;
      const typeFlag = String.fromCharCode(block[156] ?? 0x30);
      let size = readNumber(block, 124, 12);
      const contentOffset = position + BLOCK;
      if (typeFlag === "x" || typeFlag === "L") {
        const content = Buffer.alloc(size);
        await handle.read(content, 0, size, contentOffset);
        if (typeFlag === "x") pending = parsePax(content);
        else longName = readString(content, 0, size);
        position = contentOffset + Math.ceil(size / BLOCK) * BLOCK;
        continue;
      }
      if (typeFlag === "g") {
        position = contentOffset + Math.ceil(size / BLOCK) * BLOCK;
        continue;
      }
      const prefix = readString(block, 345, 155);
      let name = readString(block, 0, 100);
      if (prefix && readString(block, 257, 5) === "ustar") name = `${prefix}/${name}`;
      if (longName !== undefined) name = longName;
      const paxPath = pending?.get("path");
      if (paxPath !== undefined) name = paxPath;
      const paxSize = pending?.get("size");
      if (paxSize !== undefined) size = Number.parseInt(paxSize, 10);
      pending = undefined;
      longName = undefined;
      const type =
        typeFlag === "0" || typeFlag === "\0" || typeFlag === "7"
          ? "file"
          : typeFlag === "5"
            ? "directory"
            : typeFlag === "2"
              ? "symlink"
              : "other";
      const contentSize = type === "file" ? size : 0;
      if (contentOffset + contentSize > fileSize) {
        throw new ImageError(
          "BERTH_IMAGE_BASE_CORRUPT",
          `${describe} is truncated: ${name} needs ${contentSize} bytes past the end of the file; ` +
            "write the archive again (e.g. podman save --format oci-archive)",
        );
      }
      entries.set(normalizeName(name), { type, offset: contentOffset, size: contentSize });
      position = contentOffset + Math.ceil(contentSize / BLOCK) * BLOCK;
    }
  } finally {
    await handle.close();
  }
  return entries;
}
