// Tar writer and reader, deterministic gzip framing and the layer cache, checked against GNU tar and zlib.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { BlobStore } from "./blob-store.js";
import { buildLayer, GZIP_HEADER, type LayerSpec, layerCacheKey, writeGzipLayer } from "./layer.js";
import { entryHeader, indexTar, type TarEntry, tarChunks } from "./tar.js";

const work = mkdtempSync(join(tmpdir(), "berth-layer-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

const longName = `app/node_modules/${"deep/".repeat(30)}file.js`;
const payload = join(work, "payload.bin");
writeFileSync(payload, Buffer.alloc(70_000, 7));

function entries(mtime = 0): TarEntry[] {
  return [
    { path: "app", type: "directory", mode: 0o755, uid: 0, gid: 0, mtime, size: 0 },
    {
      path: "app/bin.js",
      type: "file",
      mode: 0o755,
      uid: 0,
      gid: 0,
      mtime,
      size: 5,
      source: { kind: "buffer", data: Buffer.from("hello") },
    },
    {
      path: "app/data.bin",
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime,
      size: 70_000,
      source: { kind: "file", path: payload },
    },
    { path: "app/link", type: "symlink", mode: 0o777, uid: 0, gid: 0, mtime, size: 0, linkTarget: "bin.js" },
    { path: "home/berth", type: "directory", mode: 0o755, uid: 10001, gid: 10001, mtime, size: 0 },
    {
      path: longName,
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime,
      size: 3,
      source: { kind: "buffer", data: Buffer.from("abc") },
    },
  ];
}

describe("tar", () => {
  it("writes 512-byte headers with a valid checksum, and a PAX record for names beyond 100 bytes", () => {
    const header = entryHeader(entries()[1] as TarEntry);
    expect(header.length).toBe(512);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number);
    expect(Number.parseInt(header.toString("ascii", 148, 154), 8)).toBe(sum);
    const long = entryHeader(entries()[5] as TarEntry);
    expect(long.length).toBe(512 * 3); // PAX header, its record block, then the entry
    expect(String.fromCharCode(long[156] as number)).toBe("x");
    expect(long.toString("utf8", 512, 1024)).toContain(` path=${longName}\n`);
  });

  it("round-trips through GNU tar and through indexTar", async () => {
    const archive = join(work, "t.tar");
    writeFileSync(archive, await collect(tarChunks(entries())));
    const listing = spawnSync("tar", ["-tvf", archive, "--numeric-owner"], { encoding: "utf8" });
    expect(listing.status, listing.stderr).toBe(0);
    expect(listing.stdout).toContain(longName);
    expect(listing.stdout).toMatch(/lrwxrwxrwx 0\/0 +0 1970-01-01 00:00 app\/link -> bin\.js/);
    expect(listing.stdout).toMatch(/drwxr-xr-x 10001\/10001 +0 1970-01-01 00:00 home\/berth\//);
    const index = await indexTar(archive, "t.tar");
    const data = index.get("app/data.bin");
    expect(data?.size).toBe(70_000);
    expect(readFileSync(archive).subarray(data?.offset, (data?.offset ?? 0) + 70_000)).toEqual(
      Buffer.alloc(70_000, 7),
    );
    expect(index.get(longName)?.size).toBe(3);
    expect(index.get("home/berth")?.type).toBe("directory");
  });
});

describe("gzip layers", () => {
  it("frame deflate with a fixed header and trailer that gunzip accepts; digest and diff_id hash the right bytes", async () => {
    const destination = join(work, "layer.gz");
    const written = await writeGzipLayer(tarChunks(entries()), destination, { level: 6 });
    const compressed = readFileSync(destination);
    expect(compressed.subarray(0, 10)).toEqual(GZIP_HEADER);
    const tar = gunzipSync(compressed);
    expect(tar).toEqual(await collect(tarChunks(entries())));
    expect(written.digest).toBe(`sha256:${createHash("sha256").update(compressed).digest("hex")}`);
    expect(written.diffId).toBe(`sha256:${createHash("sha256").update(tar).digest("hex")}`);
    expect(written.size).toBe(compressed.length);
    expect(written.uncompressedSize).toBe(tar.length);
  });

  it("gives the same bytes for the same entries, different bytes for a different mtime", async () => {
    const a = await writeGzipLayer(tarChunks(entries()), join(work, "a.gz"), { level: 6 });
    const b = await writeGzipLayer(tarChunks(entries()), join(work, "b.gz"), { level: 6 });
    const c = await writeGzipLayer(tarChunks(entries(1)), join(work, "c.gz"), { level: 6 });
    expect(b.digest).toBe(a.digest);
    expect(c.digest).not.toBe(a.digest);
  });

  it("caches by content key: a second build with the same inputs writes nothing", async () => {
    const store = new BlobStore(join(work, "store"));
    const spec: LayerSpec = { name: "test", createdBy: "test", entries: entries() };
    const first = await buildLayer(spec, store, { gzipLevel: 6 });
    const second = await buildLayer(spec, store, { gzipLevel: 6 });
    expect(first.cached).toBe(false);
    expect(second.cached).toBe(true);
    expect(second.digest).toBe(first.digest);
    const changed = {
      ...spec,
      entries: entries().map((e) => (e.path === "app/bin.js" ? { ...e, mode: 0o644 } : e)),
    };
    expect(layerCacheKey(changed, 6)).not.toBe(layerCacheKey(spec, 6));
    expect(layerCacheKey(spec, 1)).not.toBe(layerCacheKey(spec, 6));
  });
});
