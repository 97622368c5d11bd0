// Image layers: a tar of entries, gzip-compressed with a fixed header, streamed to disk while hashing
// both the compressed bytes (the digest) and the tar (the diff_id); cached by a key over the inputs.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { constants, crc32, createDeflateRaw } from "node:zlib";
import type { BlobStore, LayerRecord } from "./blob-store.js";
import { asDiskFullError } from "./errors.js";
import { MEDIA_TYPES } from "./oci.js";
import { type TarEntry, tarChunks } from "./tar.js";

/** Bump when the bytes a layer's entries produce change (tar or gzip format), to invalidate caches. */
export const LAYER_FORMAT_VERSION = 1;
export const DEFAULT_GZIP_LEVEL = 6;

/**
 * gzip member header (RFC 1952) with nothing that varies: no file name, mtime 0, no extra flags,
 * OS 255 (unknown), as Go's archive writers do. zlib's own header would depend on zlib's choices.
 */
export const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);

export interface LayerSpec {
  /** Short name for progress and history: dependencies, application, model. */
  name: string;
  /** The config history's created_by for this layer. */
  createdBy: string;
  /** Entries in archive order (sorted by path). */
  entries: TarEntry[];
}

export interface BuiltLayer extends LayerRecord {
  name: string;
  createdBy: string;
  /** True when the layer came from the cache instead of being written. */
  cached: boolean;
}

export type ProgressReporter = (name: string, doneBytes: number, totalBytes: number) => void;

/** The cache key of a layer: everything that decides its bytes, with files identified by size and mtime. */
export function layerCacheKey(spec: LayerSpec, gzipLevel: number): string {
  const hash = createHash("sha256");
  hash.update(`berth-layer v${LAYER_FORMAT_VERSION} gzip${gzipLevel} ${spec.name}\n`);
  for (const entry of spec.entries) {
    const source = entry.source;
    const identity =
      source === undefined
        ? ""
        : source.kind === "buffer"
          ? createHash("sha256").update(source.data).digest("hex")
          : `${source.path}@${source.start ?? 0}#${source.stamp ?? ""}`;
    hash.update(
      `${entry.type}\0${entry.path}\0${entry.mode}\0${entry.uid}\0${entry.gid}\0${entry.mtime}\0` +
        `${entry.size}\0${entry.linkTarget ?? ""}\0${identity}\n`,
    );
  }
  return hash.digest("hex");
}

export interface WrittenLayer {
  digest: string;
  size: number;
  diffId: string;
  uncompressedSize: number;
}

/** Streams tar chunks through deflate into `destination`; memory stays at a few chunks whatever the size. */
export async function writeGzipLayer(
  chunks: AsyncIterable<Buffer>,
  destination: string,
  options: { level: number; onUncompressedBytes?: (bytes: number) => void },
): Promise<WrittenLayer> {
  const diffHash = createHash("sha256");
  const digestHash = createHash("sha256");
  let crc = 0;
  let uncompressedSize = 0;
  let compressedSize = 0;

  const measureTar = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      diffHash.update(chunk);
      crc = crc32(chunk, crc);
      uncompressedSize += chunk.length;
      options.onUncompressedBytes?.(uncompressedSize);
      callback(null, chunk);
    },
  });
  let headerWritten = false;
  const frameGzip = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (!headerWritten) {
        headerWritten = true;
        digestHash.update(GZIP_HEADER);
        compressedSize += GZIP_HEADER.length;
        this.push(GZIP_HEADER);
      }
      digestHash.update(chunk);
      compressedSize += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(crc >>> 0, 0);
      trailer.writeUInt32LE(uncompressedSize % 2 ** 32, 4);
      const head = headerWritten ? Buffer.alloc(0) : GZIP_HEADER;
      const tail = Buffer.concat([head, trailer]);
      digestHash.update(tail);
      compressedSize += tail.length;
      callback(null, tail);
    },
  });
  try {
    await pipeline(
      Readable.from(chunks),
      measureTar,
      createDeflateRaw({
        level: options.level,
        windowBits: 15,
        memLevel: 8,
        strategy: constants.Z_DEFAULT_STRATEGY,
      }),
      frameGzip,
      createWriteStream(destination),
    );
  } catch (error) {
    await rm(destination, { force: true });
    throw asDiskFullError(error, "a layer", destination);
  }
  return {
    digest: `sha256:${digestHash.digest("hex")}`,
    size: compressedSize,
    diffId: `sha256:${diffHash.digest("hex")}`,
    uncompressedSize,
  };
}

/** Builds a layer, or takes it from the cache when the same inputs built it before. */
export async function buildLayer(
  spec: LayerSpec,
  store: BlobStore,
  options: { gzipLevel: number; onProgress?: ProgressReporter },
): Promise<BuiltLayer> {
  const key = layerCacheKey(spec, options.gzipLevel);
  const cached = await store.readLayerRecord(key);
  if (cached) return { ...cached, name: spec.name, createdBy: spec.createdBy, cached: true };
  const totalBytes = spec.entries.reduce((sum, entry) => sum + entry.size + 512, 1024);
  const temp = await store.tempPath();
  const onProgress = options.onProgress;
  const written = await writeGzipLayer(tarChunks(spec.entries), temp, {
    level: options.gzipLevel,
    ...(onProgress
      ? { onUncompressedBytes: (bytes: number) => onProgress(spec.name, bytes, totalBytes) }
      : {}),
  });
  await store.commit(temp, written.digest);
  const record: LayerRecord = { ...written, mediaType: MEDIA_TYPES.ociLayerGzip };
  await store.writeLayerRecord(key, record);
  return { ...record, name: spec.name, createdBy: spec.createdBy, cached: false };
}
