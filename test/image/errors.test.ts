// The failures `berth build` must explain: a missing base image, a corrupt base layer (a byte flipped
// in a copied layout and in an archive), and a full disk (a real 1 MiB tmpfs). Each exits 1 with its
// stable code on stderr and leaves no half-written archive behind.
import { spawnSync } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
  writeSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berth, localBaseArchive, snapshotProject, tempDir } from "./fixtures.js";
import { containerToolsMissing, runOk } from "./podman.js";

const missing = containerToolsMissing();
if (missing) console.warn(`test/image/errors: skipped: ${missing}`);

/** Flips one byte of `path` at `offset` (the fault this test injects). */
function flipByte(path: string, offset: number): void {
  const fd = openSync(path, "r+");
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, offset);
    byte[0] = (byte[0] as number) ^ 0xff;
    writeSync(fd, byte, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(missing !== undefined)("berth build errors", () => {
  let work: string;
  let project: string;
  let baseArchive: string;
  let home: string;

  beforeAll(async () => {
    work = tempDir("errors");
    project = snapshotProject();
    home = join(work, "home");
    baseArchive = await localBaseArchive();
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
    if (project) await rm(project, { recursive: true, force: true });
  });

  const build = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    berth(["build", "--project", project, "--tag", "localhost/berth:errors", ...args], {
      BERTH_HOME: home,
      ...env,
    });

  it("names a missing base archive, and an image name the archive does not hold", async () => {
    const absent = await build(["--base", `oci-archive:${join(work, "nope.tar")}`]);
    expect(absent.code).toBe(1);
    expect(absent.stderr).toContain("BERTH_IMAGE_BASE_NOT_FOUND");
    expect(absent.stderr).toContain("make-base.sh");

    const wrongName = await build(["--base", `oci-archive:${baseArchive}:localhost/other:1`]);
    expect(wrongName.code).toBe(1);
    expect(wrongName.stderr).toContain("BERTH_IMAGE_BASE_NOT_FOUND");
    expect(wrongName.stderr).toContain("localhost/berth-node-base:20"); // what it does hold
  });

  it("refuses a base layout whose layer was altered, naming the layer, and writes no archive", async () => {
    const layout = join(work, "layout");
    await runOk("skopeo", ["copy", "--quiet", `oci-archive:${baseArchive}`, `oci:${layout}:base`]);
    const blobs = join(layout, "blobs", "sha256");
    const largest = readdirSync(blobs)
      .map((name) => ({ name, size: statSync(join(blobs, name)).size }))
      .sort((a, b) => b.size - a.size)[0];
    if (!largest) throw new Error("the copied layout has no blobs");
    flipByte(join(blobs, largest.name), Math.floor(largest.size / 2));

    const out = join(work, "corrupt-out");
    mkdirSync(out);
    const result = await build(["--base", `oci:${layout}:base`, "--oci-archive", join(out, "image.tar")]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("BERTH_IMAGE_BASE_CORRUPT");
    expect(result.stderr).toContain(`sha256:${largest.name}`);
    expect(readdirSync(out)).toEqual([]);
  });

  it("refuses an archive whose layer was altered", async () => {
    const copy = join(work, "corrupt-base.tar");
    copyFileSync(baseArchive, copy);
    // The base's one layer fills nearly all of the archive: the middle byte is inside it.
    flipByte(copy, Math.floor(statSync(copy).size / 2));
    const result = await build(["--base", `oci-archive:${copy}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("BERTH_IMAGE_BASE_CORRUPT");
  });

  describe("on a full disk", () => {
    let parent: string;
    let full: string;
    let unavailable: string | undefined;

    beforeAll(() => {
      parent = tempDir("tmpfs");
      full = join(parent, "mnt");
      mkdirSync(full);
      // A real full file system: a 1 MiB tmpfs (needs root, as CI runs). Elsewhere the test is skipped.
      const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", full], {
        encoding: "utf8",
      });
      unavailable = mounted.status === 0 ? undefined : `cannot mount a tmpfs: ${mounted.stderr.trim()}`;
    });

    afterAll(async () => {
      if (!unavailable) spawnSync("umount", [full]);
      await rm(parent, { recursive: true, force: true });
    });

    it("says BERTH_IMAGE_DISK_FULL for the archive and for the layer cache, leaving no partial file", async (context) => {
      if (unavailable) {
        console.warn(`test/image/errors (full disk): skipped: ${unavailable}`);
        context.skip();
      }
      // Layers cached elsewhere: the archive is what no longer fits.
      const archive = await build([
        "--base",
        `oci-archive:${baseArchive}`,
        "--oci-archive",
        join(full, "image.tar"),
      ]);
      expect(archive.code).toBe(1);
      expect(archive.stderr).toContain("BERTH_IMAGE_DISK_FULL");
      expect(archive.stderr).toContain(join(full, "image.tar"));
      expect(readdirSync(full)).toEqual([]);

      // The layer cache itself on the full disk.
      const cache = await build(["--base", `oci-archive:${baseArchive}`], {
        BERTH_HOME: join(full, "home"),
      });
      expect(cache.code).toBe(1);
      expect(cache.stderr).toContain("BERTH_IMAGE_DISK_FULL");
      expect(cache.stderr).toContain("BERTH_HOME");
    });
  });
});
