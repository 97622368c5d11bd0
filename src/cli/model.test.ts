// `berth model tiny|inspect` end to end: spawns `node bin/berth.js` (needs `npm run build`) and
// checks the printed shape, the JSON, and the one-line errors with exit code 2.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { runBerth as berth } from "../../test/support/berth-cli.js";
import { gv, writeGguf } from "../models/gguf.js";
import type { ModelSummary } from "../models/inspect.js";
import { ensureTinyModel } from "../models/tiny.js";

const directory = mkdtempSync(join(tmpdir(), "berth-cli-model-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe("berth model inspect", () => {
  test("reports the tiny model's shape, and --json parses", async () => {
    const path = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
    const text = await berth(["model", "inspect", path]);
    expect(text.stderr).toBe("");
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/architecture:\s+gpt2/);
    expect(text.stdout).toMatch(/layers:\s+2\n/);
    expect(text.stdout).toMatch(/embedding:\s+64\n/);
    expect(text.stdout).toMatch(/heads:\s+2\n/);
    expect(text.stdout).toMatch(/context:\s+1024\n/);
    expect(text.stdout).toMatch(/vocab:\s+50257\n/);
    expect(text.stdout).toMatch(/file type:\s+F16\n/);

    const json = await berth(["model", "inspect", path, "--json"]);
    expect(json.code).toBe(0);
    const summary = JSON.parse(json.stdout) as ModelSummary;
    expect(summary).toMatchObject({
      architecture: "gpt2",
      layers: 2,
      embedding: 64,
      heads: 2,
      contextLength: 1024,
      vocabSize: 50257,
      tokenizerModel: "gpt2",
      fileType: "F16",
      parameterCount: 3_382_080,
      generative: true,
      hasChatTemplate: false,
    });
    expect(summary.fileSizeBytes).toBe(readFileSync(path).length);
  });

  test("reports GPT-2 124M's shape and parameter count (q8_0)", async () => {
    const path = await ensureTinyModel({ shape: "gpt2-124m", dtype: "q8_0" });
    const json = await berth(["model", "inspect", "--json", path]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      layers: 12,
      embedding: 768,
      heads: 12,
      contextLength: 1024,
      vocabSize: 50257,
      parameterCount: 124_439_808,
      fileType: "Q8_0",
    });
  });

  test.each([
    ["random bytes", "BERTH_MODEL_NOT_GGUF"],
    ["a truncated file", "BERTH_MODEL_TRUNCATED"],
    ["an unsupported architecture", "BERTH_MODEL_UNSUPPORTED_ARCH"],
    ["a missing file", "BERTH_MODEL_NOT_FOUND"],
  ])("%s: one line on stderr, exit 2", async (what, code) => {
    const path = join(directory, `${code}.gguf`);
    if (code === "BERTH_MODEL_NOT_GGUF")
      writeFileSync(path, Buffer.concat([Buffer.from("XXXX"), randomBytes(512)]));
    if (code === "BERTH_MODEL_TRUNCATED") {
      const whole = readFileSync(await ensureTinyModel({ shape: "tiny", dtype: "q8_0" }));
      writeFileSync(path, whole.subarray(0, Math.floor(whole.length / 2)));
    }
    if (code === "BERTH_MODEL_UNSUPPORTED_ARCH") {
      await writeGguf(path, {
        metadata: new Map([["general.architecture", gv.str("flask-gpt")]]),
        tensors: [],
      });
    }
    const result = await berth(["model", "inspect", path]);
    expect(result.code, what).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain(code);
    expect(result.stderr).toContain(path);
  });
});

describe("berth model tiny", () => {
  test("writes a model that inspect reads back", async () => {
    const out = join(directory, "written.gguf");
    const written = await berth(["model", "tiny", "--dtype", "q8_0", "--out", out, "--json"]);
    expect(written.code).toBe(0);
    expect(JSON.parse(written.stdout)).toMatchObject({ path: out, shape: "tiny", dtype: "q8_0" });
    const inspected = JSON.parse((await berth(["model", "inspect", out, "--json"])).stdout) as ModelSummary;
    expect(inspected.fileType).toBe("Q8_0");
    expect(inspected.tensorTypes).toEqual({ q8_0: 9, f16: 1, f32: 18 });
  });

  test("an unknown shape or dtype is a usage error", async () => {
    const shape = await berth(["model", "tiny", "--shape", "huge", "--out", join(directory, "x.gguf")]);
    expect(shape.code).toBe(2);
    expect(shape.stderr).toContain("--shape");
    const dtype = await berth(["model", "tiny", "--dtype", "q4_0", "--out", join(directory, "x.gguf")]);
    expect(dtype.code).toBe(2);
    expect(dtype.stderr).toContain("--dtype");
  });
});
