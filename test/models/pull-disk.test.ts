// Disk full and a read-only cache, on real file systems: a 2 MiB tmpfs (the tiny model is 5 MiB)
// and a read-only tmpfs. Needs root for mount(8), as CI runs; the error must be one clear line and
// the cache must hold nothing half-written afterwards.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ModelSourceError } from "../../src/models/errors.js";
import { pullModel } from "../../src/models/store.js";
import { type HubServer, startHubServer } from "../support/hub-server.js";
import { GGUF_REPO, isolatedEnv, makeHubFolder } from "./fixtures.js";

let root: string;
let scratch: string;
let hub: HubServer;
const mounts: string[] = [];

function mountTmpfs(path: string, options: string): void {
  mkdirSync(path, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", path]);
  mounts.push(path);
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)).map((p) => `${entry.name}/${p}`) : [entry.name],
  );
}

beforeAll(async () => {
  root = await makeHubFolder();
  scratch = await mkdtemp(join(tmpdir(), "berth-pull-disk-"));
  hub = await startHubServer({ root });
});

afterAll(async () => {
  await hub?.close();
  for (const path of mounts.reverse()) execFileSync("umount", [path]);
  rmSync(root, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

async function pullError(source: string, env: NodeJS.ProcessEnv): Promise<ModelSourceError> {
  const error = await pullModel(source, { env }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ModelSourceError);
  return error as ModelSourceError;
}

describe("cache on a full or read-only disk", () => {
  test("disk full: one line saying so; the partial file is removed", async () => {
    const small = join(scratch, "small");
    mountTmpfs(small, "size=2m");
    const env = isolatedEnv(join(scratch, "home"), {
      HF_ENDPOINT: hub.url,
      HF_HUB_CACHE: join(small, "hub"),
    });
    const error = await pullError(`hf://${GGUF_REPO}:Q8_0`, env);
    expect(error.code).toBe("BERTH_MODEL_CACHE_WRITE");
    expect(error.message).toMatch(/no space left on the device of .*small\/hub.* \(ENOSPC\)/);
    expect(error.message).not.toContain("\n");
    expect(walk(small).filter((f) => !f.endsWith("/"))).toEqual([]);
  });

  test("read-only cache: one line naming the folder", async () => {
    const readOnly = join(scratch, "ro");
    mountTmpfs(readOnly, "size=1m,ro");
    const env = isolatedEnv(join(scratch, "home2"), {
      HF_ENDPOINT: hub.url,
      HF_HUB_CACHE: join(readOnly, "hub"),
    });
    const error = await pullError(`hf://${GGUF_REPO}:Q8_0`, env);
    expect(error.code).toBe("BERTH_MODEL_CACHE_WRITE");
    expect(error.message).toMatch(/cannot write .*ro\/hub.* \(EROFS: read-only file system\)/);
  });
});
