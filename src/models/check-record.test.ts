// checkModelFileOnce: the check runs once per file as it is; a rewritten file (same size and path),
// another BERTH_HOME or a file that fails are checked again; a failure is never recorded.
import { closeSync, copyFileSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkModelFileOnce } from "./check-record.js";
import { ModelError } from "./errors.js";
import { ensureTinyModel } from "./tiny.js";

const directory = mkdtempSync(join(tmpdir(), "berth-check-record-"));
const env = { BERTH_HOME: join(directory, "home") };
let tinyPath = "";

beforeAll(async () => {
  tinyPath = await ensureTinyModel({ home: join(directory, "tiny-home") });
}, 120_000);
afterAll(() => rmSync(directory, { recursive: true, force: true }));

let fileCounter = 0;
function copyOfTiny(): string {
  const path = join(directory, `model-${fileCounter++}.gguf`);
  copyFileSync(tinyPath, path);
  return path;
}

/** Overwrites the GGUF magic in place: same path, inode and size, bytes no longer a model. */
function breakInPlace(path: string): void {
  const descriptor = openSync(path, "r+");
  writeSync(descriptor, Buffer.from("XXXX"), 0, 4, 0);
  closeSync(descriptor);
}

describe("checkModelFileOnce", () => {
  it("checks a file once, then trusts the record while the file is the same", async () => {
    const path = copyOfTiny();
    expect(await checkModelFileOnce(path, env)).toEqual({ checked: true });
    expect(await checkModelFileOnce(path, env)).toEqual({ checked: false });
  });

  it("checks again, and refuses, a file rewritten in place after it passed", async () => {
    const path = copyOfTiny();
    await checkModelFileOnce(path, env);
    breakInPlace(path);
    await expect(checkModelFileOnce(path, env)).rejects.toBeInstanceOf(ModelError);
  });

  it("never records a file that fails", async () => {
    const path = copyOfTiny();
    breakInPlace(path);
    await expect(checkModelFileOnce(path, env)).rejects.toBeInstanceOf(ModelError);
    await expect(checkModelFileOnce(path, env)).rejects.toBeInstanceOf(ModelError);
  });

  it("keeps records per BERTH_HOME", async () => {
    const path = copyOfTiny();
    await checkModelFileOnce(path, env);
    expect(await checkModelFileOnce(path, { BERTH_HOME: join(directory, "other-home") })).toEqual({
      checked: true,
    });
  });

  it("a missing file fails as checkModelFile does", async () => {
    await expect(checkModelFileOnce(join(directory, "absent.gguf"), env)).rejects.toBeInstanceOf(ModelError);
  });
});
