// A hub folder for the model-store tests: GGUF repos named like real ones (name-Q8_0.gguf,
// name-F16.gguf) holding real tiny GPT-2 models, a private repo, and a safetensors-only repo.
import { copyFile, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureTinyModel } from "../../src/models/tiny.js";

export const GGUF_REPO = "berth-test/tiny-gpt2-GGUF";
export const PRIVATE_REPO = "berth-test/private-GGUF";
export const SAFETENSORS_REPO = "berth-test/tiny-gpt2";
export const TOKEN = "hf_berthTestToken0123456789";

export async function makeHubFolder(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "berth-hub-"));
  const q8 = await ensureTinyModel({ shape: "tiny", dtype: "q8_0" });
  const f16 = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
  const gguf = join(root, ...GGUF_REPO.split("/"));
  await mkdir(gguf, { recursive: true });
  await copyFile(q8, join(gguf, "tiny-gpt2-Q8_0.gguf"));
  await copyFile(f16, join(gguf, "tiny-gpt2-F16.gguf"));
  await writeFile(join(gguf, "README.md"), "# tiny-gpt2-GGUF\nRandom weights for tests.\n");
  await writeFile(join(gguf, ".gitattributes"), "*.gguf filter=lfs diff=lfs merge=lfs -text\n");
  const secret = join(root, ...PRIVATE_REPO.split("/"));
  await mkdir(secret, { recursive: true });
  await copyFile(q8, join(secret, "private-Q8_0.gguf"));
  const safetensors = join(root, ...SAFETENSORS_REPO.split("/"));
  await mkdir(safetensors, { recursive: true });
  await writeFile(join(safetensors, "config.json"), JSON.stringify({ model_type: "gpt2", n_layer: 2 }));
  const header = Buffer.from(JSON.stringify({ __metadata__: { format: "pt" } }));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  await writeFile(join(safetensors, "model.safetensors"), Buffer.concat([length, header]));
  return root;
}

/** An environment with no HF settings of the machine's own: only what the test gives. */
export function isolatedEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(HF_|HUGGING_FACE_|BERTH_HOME$|XDG_CACHE_HOME$|AWS_)/.test(key)) env[key] = value;
  }
  return { ...env, HF_HOME: join(home, "hf"), BERTH_HOME: join(home, "berth"), ...extra };
}
