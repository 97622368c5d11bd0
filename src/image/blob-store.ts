// The content-addressed cache under BERTH_HOME/image: blobs by digest (built layers, base layers pulled
// from registries) and layer records by content key, so a rebuild with unchanged inputs writes nothing.
import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { z } from "zod";
import { asDiskFullError } from "./errors.js";
import { DIGEST } from "./reference.js";

export const layerRecordSchema = z.object({
  digest: z.string().regex(DIGEST),
  size: z.number().int().nonnegative(),
  diffId: z.string().regex(DIGEST),
  mediaType: z.string(),
  uncompressedSize: z.number().int().nonnegative(),
});
export type LayerRecord = z.output<typeof layerRecordSchema>;

/** Where a blob's bytes are: a whole file, or a range of one (a blob inside an OCI archive). */
export interface BlobRef {
  mediaType: string;
  digest: string;
  size: number;
  path: string;
  start: number;
}

export class BlobStore {
  constructor(readonly root: string) {}

  blobPath(digest: string): string {
    return join(this.root, "blobs", "sha256", digest.slice("sha256:".length));
  }

  /** A blob present with the expected size (blobs are only ever renamed in complete and verified). */
  async has(digest: string, size?: number): Promise<boolean> {
    try {
      const info = await stat(this.blobPath(digest));
      return size === undefined || info.size === size;
    } catch {
      return false;
    }
  }

  /** A fresh temporary file on the same file system as the blobs, so committing is a rename. */
  async tempPath(): Promise<string> {
    const dir = join(this.root, "tmp");
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      throw asDiskFullError(error, "the layer cache", dir);
    }
    return join(dir, randomUUID());
  }

  async commit(tempPath: string, digest: string): Promise<string> {
    const target = this.blobPath(digest);
    try {
      await mkdir(join(this.root, "blobs", "sha256"), { recursive: true });
      await rename(tempPath, target);
    } catch (error) {
      await rm(tempPath, { force: true });
      throw asDiskFullError(error, "the layer cache", target);
    }
    return target;
  }

  blobRef(record: { digest: string; size: number; mediaType: string }): BlobRef {
    return { ...record, path: this.blobPath(record.digest), start: 0 };
  }

  private recordPath(key: string): string {
    return join(this.root, "layers", `${key}.json`);
  }

  /** The layer built earlier from the same inputs, if its blob is still there. */
  async readLayerRecord(key: string): Promise<LayerRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.recordPath(key), "utf8");
    } catch {
      return undefined;
    }
    const parsed = layerRecordSchema.safeParse(JSON.parse(text));
    if (!parsed.success) return undefined;
    return (await this.has(parsed.data.digest, parsed.data.size)) ? parsed.data : undefined;
  }

  async writeLayerRecord(key: string, record: LayerRecord): Promise<void> {
    const path = this.recordPath(key);
    const temp = `${path}.${randomUUID()}.tmp`;
    try {
      await mkdir(join(this.root, "layers"), { recursive: true });
      await writeFile(temp, JSON.stringify(record));
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw asDiskFullError(error, "the layer cache", path);
    }
  }
}

/** Reads a blob (or a range of a file) as a stream. */
export function openBlob(ref: BlobRef): Readable {
  if (ref.size === 0) return Readable.from([]);
  return createReadStream(ref.path, {
    start: ref.start,
    end: ref.start + ref.size - 1,
    highWaterMark: 1 << 20,
  });
}
