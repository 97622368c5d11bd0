// Writes an OCI archive: a tar of an OCI image layout (oci-layout, index.json, blobs/sha256/…) with
// sorted entries and fixed times, what `podman load`, `skopeo … oci-archive:FILE` and umoci read.
import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { BlobRef } from "./blob-store.js";
import { asDiskFullError } from "./errors.js";
import { type TarEntry, tarChunks } from "./tar.js";

export const OCI_LAYOUT_FILE = Buffer.from('{"imageLayoutVersion":"1.0.0"}');

export type ArchiveBlob = { digest: string; bytes: Buffer } | BlobRef;

/** The layout's entries, sorted, each blob once. Pure. */
export function layoutEntries(blobs: readonly ArchiveBlob[], indexJson: Buffer, mtime: number): TarEntry[] {
  const file = (path: string, size: number, source: TarEntry["source"]): TarEntry => ({
    path,
    type: "file",
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime,
    size,
    ...(source ? { source } : {}),
  });
  const directory = (path: string): TarEntry => ({
    path,
    type: "directory",
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtime,
    size: 0,
  });
  const entries = new Map<string, TarEntry>();
  for (const blob of blobs) {
    const path = `blobs/sha256/${blob.digest.slice("sha256:".length)}`;
    if (entries.has(path)) continue;
    entries.set(
      path,
      "bytes" in blob
        ? file(path, blob.bytes.length, { kind: "buffer", data: blob.bytes })
        : file(path, blob.size, { kind: "file", path: blob.path, start: blob.start }),
    );
  }
  entries.set("blobs", directory("blobs"));
  entries.set("blobs/sha256", directory("blobs/sha256"));
  entries.set("index.json", file("index.json", indexJson.length, { kind: "buffer", data: indexJson }));
  entries.set(
    "oci-layout",
    file("oci-layout", OCI_LAYOUT_FILE.length, { kind: "buffer", data: OCI_LAYOUT_FILE }),
  );
  return [...entries.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/** Writes the archive next to its destination and renames it into place, so a failure leaves nothing half-written. */
export async function writeOciArchive(
  destination: string,
  blobs: readonly ArchiveBlob[],
  indexJson: Buffer,
  mtime: number,
): Promise<void> {
  const temp = join(dirname(destination), `.${basename(destination)}.${randomUUID()}.tmp`);
  try {
    await mkdir(dirname(destination), { recursive: true });
    await pipeline(Readable.from(tarChunks(layoutEntries(blobs, indexJson, mtime))), createWriteStream(temp));
    await rename(temp, destination);
  } catch (error) {
    await rm(temp, { force: true });
    throw asDiskFullError(error, "the OCI archive", destination);
  }
}
