// Convert on first use: the seed example's source shape (a GPT-2 repo with safetensors and no GGUF,
// served by the hub-compatible test server) pulls, converts once and serves; the conversion is
// cached by (source commit, dtype) so the next pull makes no request, offline too; a local
// checkpoint folder converts once per content. The pickle in the repo is never fetched.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readGguf } from "../../src/models/gguf.js";
import { pullModel } from "../../src/models/store.js";
import { runBerth } from "../support/berth-cli.js";
import { writeGpt2Checkpoint } from "../support/convert/checkpoint.js";
import { type HubServer, startHubServer } from "../support/hub-server.js";
import { REPO_ROOT, type ServeProcess, startServe } from "../support/serve-process.js";
import { type BerthUp, startBerthUp } from "../up/harness.js";
import { isolatedEnv } from "./fixtures.js";

const REPO = "openai-community/gpt2";
let root: string;
let scratch: string;
let hub: HubServer;
let served: ServeProcess | undefined;
let up: BerthUp | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "berth-hub-convert-"));
  scratch = await mkdtemp(join(tmpdir(), "berth-first-use-"));
  // As the real openai-community/gpt2: tensor names without "transformer.", attention-mask
  // buffers, vocab.json + merges.txt, generation_config.json, and a pickle beside the safetensors.
  const repo = join(root, ...REPO.split("/"));
  writeGpt2Checkpoint(
    repo,
    (tensors) => {
      for (const block of [0, 1]) tensors[`h.${block}.attn.bias`] = { shape: [1, 1, 64, 64] };
    },
    // The real gpt2's context, so the seed spec's contextSize 1024 fits.
    { n_ctx: 1024, n_positions: 1024 },
    "",
  );
  writeFileSync(
    join(repo, "generation_config.json"),
    JSON.stringify({ bos_token_id: 50256, eos_token_id: 50256 }),
  );
  writeFileSync(join(repo, "pytorch_model.bin"), "a pickle that must never be fetched");
  hub = await startHubServer({ root });
});

afterAll(async () => {
  served?.kill();
  await up?.cleanup();
  await hub?.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe("convert on first use", () => {
  it("an hf:// safetensors repo converts once, then comes from the cache with no request (offline too)", async () => {
    const env = isolatedEnv(join(scratch, "a"), { HF_ENDPOINT: hub.url });
    const phases = new Set<string>();
    const first = await pullModel(`hf://${REPO}`, { env, onProgress: (p) => phases.add(p.phase) });
    expect(first).toMatchObject({ kind: "hf", fromCache: false });
    expect(first.revision).toMatch(/^[0-9a-f]{40}$/);
    expect(first.path).toContain(
      join("converted", "v1", "hf", "openai-community--gpt2", `${first.revision}-f16.gguf`),
    );
    expect(phases.has("convert")).toBe(true);
    const file = await readGguf(first.path);
    expect(file.metadata.get("general.architecture")?.value).toBe("gpt2");
    expect(file.metadata.get("gpt2.context_length")?.value).toBe(1024);
    expect(hub.requests.some((request) => request.path.includes("pytorch_model.bin"))).toBe(false);

    const before = hub.requests.length;
    const second = await pullModel(`hf://${REPO}`, { env });
    expect(second).toMatchObject({ path: first.path, fromCache: true, revision: first.revision });
    const offline = await pullModel(`hf://${REPO}`, { env, offline: true });
    expect(offline.path).toBe(first.path);
    expect(hub.requests.length).toBe(before);

    // Another dtype is another conversion of the same commit.
    const q8 = await pullModel(`hf://${REPO}`, { env, dtype: "q8_0" });
    expect(q8.path).toContain(`${first.revision}-q8_0.gguf`);
  });

  it("a checkpoint folder converts once per content and dtype", async () => {
    const env = isolatedEnv(join(scratch, "b"));
    const dir = writeGpt2Checkpoint(join(scratch, "folder"));
    const first = await pullModel(dir, { env });
    expect(first).toMatchObject({ kind: "file", fromCache: false });
    const again = await pullModel(dir, { env });
    expect(again).toMatchObject({ path: first.path, fromCache: true });
    // Changed weights are a new conversion.
    writeGpt2Checkpoint(dir, (tensors) => {
      tensors["transformer.ln_f.bias"] = { shape: [32], data: Buffer.alloc(32 * 4) };
    });
    const changed = await pullModel(dir, { env });
    expect(changed.path).not.toBe(first.path);
    expect(changed.fromCache).toBe(false);
  });

  it("berth model convert hf://ORG/REPO --out FILE converts through the store", async () => {
    const env = isolatedEnv(join(scratch, "d"), { HF_ENDPOINT: hub.url });
    const out = join(scratch, "from-hub.gguf");
    const run = await runBerth(
      ["model", "convert", `hf://${REPO}`, "--out", out, "--dtype", "q8_0", "--json"],
      env,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ path: out, architecture: "gpt2", dtype: "q8_0" });
    expect((await readGguf(out)).metadata.get("general.file_type")?.value).toBe(7);
  });

  it("berth serve --model hf://openai-community/gpt2 pulls, converts and serves /generate", async () => {
    const env = isolatedEnv(join(scratch, "c"), { HF_ENDPOINT: hub.url });
    served = await startServe(
      ["--model", `hf://${REPO}`, "--parallel", "1", "--threads", "1", "--ctx", "64"],
      {
        env,
      },
    );
    const response = await fetch(`${served.url}/generate`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "text=Hello%20world&max_length=8",
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { generated_text: string };
    expect(typeof body.generated_text).toBe("string");
    expect(body.generated_text.startsWith("Hello world")).toBe(true);
  });

  it("berth up -f examples/seed-gpt2/berth.yaml (hub served locally) pulls, converts and serves", async () => {
    const seed = readFileSync(join(REPO_ROOT, "examples", "seed-gpt2", "berth.yaml"), "utf8");
    expect(seed).toContain("source: hf://openai-community/gpt2");
    up = await startBerthUp(seed, [], {
      HF_ENDPOINT: hub.url,
      HF_HOME: join(scratch, "up-hf"),
      HF_HUB_CACHE: join(scratch, "up-hf", "hub"),
    });
    await up.waitForStatus("both seed replicas ready", (status) => status.models[0]?.ready === 2, 240_000);
    const response = await fetch(`${up.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt2", prompt: "Hello world", max_tokens: 4 }),
    });
    expect(response.status).toBe(200);
    expect(up.stderr()).toContain("pull hf://openai-community/gpt2");
    expect(await up.stop()).toBe(0);
  });
});
