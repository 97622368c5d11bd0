// Broken model files never start: `berth up` and `berth apply` run the model check (through the
// store) before any replica; a bad model is marked failed in `berth status` and the events with one
// line naming the file and what is wrong, the gateway answers 503 for it at once, the other models
// serve, and the CLI exits 2. (Before: random bytes, a cut-off file or GGUF version 99 passed and
// their replicas crash-looped forever.)
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { type BerthUp, startBerthUp } from "./harness.js";

function model(name: string, source: string): string {
  return `---
apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: ${name}
spec:
  model:
    source: ${source}
    contextSize: 256
  engine:
    parallel: 2
    threads: 1
  replicas: { min: 1, max: 1 }
  autoscaling: { enabled: false }
  resources: { cpu: "1", memory: 1Gi }
`;
}

/** Writes the three broken files into `dir`: random bytes, the tiny model cut in half, version 99. */
async function writeBrokenModels(dir: string): Promise<Record<"random" | "truncated" | "future", string>> {
  const tiny = readFileSync(await ensureTinyModel({ shape: "tiny", dtype: "q8_0" }));
  const paths = {
    random: join(dir, "random.gguf"),
    truncated: join(dir, "truncated.gguf"),
    future: join(dir, "future.gguf"),
  };
  writeFileSync(paths.random, randomBytes(256 * 1024));
  writeFileSync(paths.truncated, tiny.subarray(0, Math.floor(tiny.length / 2)));
  const future = Buffer.from(tiny);
  future.writeUInt32LE(99, 4);
  writeFileSync(paths.future, future);
  return paths;
}

async function complete(url: string, modelName: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: modelName, prompt: "Hello", max_tokens: 2 }),
  });
  return { status: response.status, text: await response.text() };
}

describe("bad model files in berth up and berth apply", () => {
  let up: BerthUp | undefined;
  afterAll(async () => {
    await up?.cleanup();
  });

  it("up: the bad models fail with their reason and start nothing; the good one serves; apply says so with exit 2", async () => {
    // The broken files live next to the spec, in the home the harness creates: write them after.
    up = await startBerthUp(model("good", "tiny://tiny?dtype=q8_0"));
    const broken = await writeBrokenModels(up.home);
    const expected = {
      random: ["BERTH_MODEL_NOT_GGUF", /the file is not a GGUF model: it starts with bytes/],
      truncated: ["BERTH_MODEL_TRUNCATED", /the GGUF file ends before its declared contents/],
      future: ["BERTH_MODEL_UNSUPPORTED_VERSION", /the GGUF version is not supported: version 99/],
    } as const;

    // Apply a spec that adds the three broken models (paths relative to the spec file).
    const spec = [
      model("good", "tiny://tiny?dtype=q8_0"),
      model("random", "./random.gguf"),
      model("truncated", "./truncated.gguf"),
      model("future", "./future.gguf"),
    ].join("");
    writeFileSync(up.specPath, spec);
    const applied = await up.berth(["apply", "-f", up.specPath]);
    expect(applied.code, applied.stderr).toBe(2);
    const lines = applied.stderr.split("\n").filter(Boolean);
    expect(lines).toHaveLength(3);
    for (const name of ["random", "truncated", "future"] as const) {
      const line = lines.find((candidate) => candidate.startsWith(`berth: model ${name} failed: `));
      expect(line, applied.stderr).toBeDefined();
      expect(line).toContain(broken[name]);
      expect(line).toMatch(expected[name][1]);
    }

    const status = await up.waitForStatus("the broken models marked failed", (current) =>
      ["random", "truncated", "future"].every(
        (name) => current.models.find((candidate) => candidate.name === name)?.failure !== undefined,
      ),
    );
    for (const name of ["random", "truncated", "future"] as const) {
      const entry = status.models.find((candidate) => candidate.name === name);
      expect(entry).toMatchObject({ desired: 0, actual: 0, available: false });
      expect(entry?.replicas).toEqual([]);
      expect(entry?.failure?.code).toBe(expected[name][0]);
      expect(entry?.failure?.message.startsWith(`${broken[name]}: `)).toBe(true);
      expect(entry?.failure?.message).not.toContain("\n");
    }

    const text = await up.berth(["status"]);
    expect(text.stdout).toContain("FAILED (BERTH_MODEL_NOT_GGUF)");
    expect(text.stdout).toContain("FAILED (BERTH_MODEL_TRUNCATED)");
    expect(text.stdout).toContain("FAILED (BERTH_MODEL_UNSUPPORTED_VERSION)");
    const events = JSON.parse((await up.berth(["events", "--model", "random", "--json"])).stdout) as Array<{
      type: string;
      message: string;
    }>;
    expect(events.find((event) => event.type === "model-failed")?.message).toContain(broken.random);

    // The gateway answers the broken model at once, with the reason; the good one serves.
    const refused = await complete(up.url, "truncated");
    expect(refused.status).toBe(503);
    expect(refused.text).toContain(broken.truncated);
    expect((await complete(up.url, "good")).status).toBe(200);

    // A running model whose new source is broken keeps serving its old file; apply exits 2.
    writeFileSync(up.specPath, model("good", "./random.gguf"));
    const broke = await up.berth(["apply", "-f", up.specPath]);
    expect(broke.code, broke.stderr).toBe(2);
    expect(broke.stderr).toContain(
      `berth: model good failed: ${broken.random}: the file is not a GGUF model`,
    );
    expect((await complete(up.url, "good")).status).toBe(200);
    const still = await up.status();
    expect(still.models.find((candidate) => candidate.name === "good")?.ready).toBe(1);
    expect(await up.stop()).toBe(0);
  });

  it("up with only a bad model exits 2 with one line naming the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-bad-model-"));
    try {
      const path = join(dir, "random.gguf");
      writeFileSync(path, randomBytes(64 * 1024));
      const started = startBerthUp(model("only", path));
      const escaped = path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      await expect(started).rejects.toThrow(
        new RegExp(`exited 2[\\s\\S]*berth: model only: ${escaped}: the file is not a GGUF model`),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
