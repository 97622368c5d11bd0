// Convert on first use: the store hands a safetensors checkpoint here (an hf:// repo without GGUF,
// or a local checkpoint folder) and gets back a GGUF converted once and cached: hf:// by (source
// commit, dtype), a folder by (content hash, dtype), under BERTH_HOME/models/converted. A conversion
// writes a temp file and renames it, so a reader never sees half a file and two concurrent
// first uses both end with the same whole file.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { modelCacheDir } from "../../util/home.js";
import { ModelError, ModelSourceError } from "../errors.js";
import { type HfPullContext, hfHubCache, hfRepoFolder, pullHf } from "../hf.js";
import type { HfSource } from "../sources.js";
import { type ConvertDtype, type ConvertProgress, convertCheckpoint } from "./index.js";

const COMMIT = /^[0-9a-f]{40}$/;
/** Bump when the converter's output for the same checkpoint changes, so old conversions are not reused. */
export const CONVERTER_VERSION = 1;
/** Files besides the weights that a conversion reads, when the repository has them. */
const OPTIONAL_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "vocab.json",
  "merges.txt",
  "generation_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
  "chat_template.json",
];

export interface ConvertedModel {
  path: string;
  sizeBytes: number;
  fromCache: boolean;
  /** hf://: the commit converted. */
  commit?: string;
}

export interface FirstUseOptions {
  env: NodeJS.ProcessEnv;
  dtype: ConvertDtype;
  onConvertProgress?: (progress: ConvertProgress) => void;
}

function convertedRoot(env: NodeJS.ProcessEnv): string {
  return join(modelCacheDir(env), "converted", `v${CONVERTER_VERSION}`);
}

function hfConvertedPath(env: NodeJS.ProcessEnv, repo: string, commit: string, dtype: ConvertDtype): string {
  return join(convertedRoot(env), "hf", repo.replace("/", "--"), `${commit}-${dtype}.gguf`);
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/** A conversion already cached for the revision the HF cache knows, with no network at all. */
export async function findConvertedHf(
  source: HfSource,
  env: NodeJS.ProcessEnv,
  dtype: ConvertDtype,
): Promise<ConvertedModel | undefined> {
  let commit = COMMIT.test(source.revision) ? source.revision : undefined;
  if (!commit) {
    try {
      const ref = (
        await readFile(join(hfRepoFolder(hfHubCache(env), source.repo), "refs", source.revision), "utf8")
      ).trim();
      if (COMMIT.test(ref)) commit = ref;
    } catch {
      return undefined;
    }
  }
  if (!commit) return undefined;
  const path = hfConvertedPath(env, source.repo, commit, dtype);
  const size = await sizeOf(path);
  return size === undefined ? undefined : { path, sizeBytes: size, fromCache: true, commit };
}

function isNotFound(error: unknown): boolean {
  return error instanceof ModelSourceError && error.code === "BERTH_MODEL_SOURCE_NOT_FOUND";
}

/**
 * Fetches a checkpoint's files into the HF cache (one snapshot, one commit) and converts it,
 * unless that commit's conversion is cached. `context` is the store's hf:// context.
 */
export async function convertHfCheckpoint(
  source: HfSource,
  context: HfPullContext,
  options: FirstUseOptions,
): Promise<ConvertedModel> {
  const { verify: _gguf, ...fileContext } = context;
  const config = await pullHf({ ...source, file: "config.json" }, fileContext);
  const commit = config.commit;
  const cachedPath = hfConvertedPath(options.env, source.repo, commit, options.dtype);
  const cachedSize = await sizeOf(cachedPath);
  if (cachedSize !== undefined) return { path: cachedPath, sizeBytes: cachedSize, fromCache: true, commit };

  const pinned: HfSource = { ...source, revision: commit };
  const pull = (file: string) => pullHf({ ...pinned, file }, fileContext);
  let fetched = !config.fromCache;
  try {
    const index = await pull("model.safetensors.index.json");
    fetched ||= !index.fromCache;
    const weightMap = (
      JSON.parse(await readFile(index.path, "utf8")) as { weight_map?: Record<string, string> }
    ).weight_map;
    for (const shard of new Set(Object.values(weightMap ?? {}))) {
      fetched = !(await pull(shard)).fromCache || fetched;
    }
  } catch (error) {
    if (!isNotFound(error)) throw error;
    try {
      fetched = !(await pull("model.safetensors")).fromCache || fetched;
    } catch (inner) {
      if (!isNotFound(inner)) throw inner;
      throw new ModelError(
        "BERTH_CHECKPOINT_NOT_FOUND",
        `${source.uri}: no model.safetensors and no model.safetensors.index.json at ${commit}; Berth converts safetensors only (pickle checkpoints such as pytorch_model.bin run arbitrary code when loaded)`,
      );
    }
  }
  for (const file of OPTIONAL_FILES) {
    try {
      fetched = !(await pull(file)).fromCache || fetched;
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  await mkdir(dirname(cachedPath), { recursive: true });
  const snapshot = dirname(config.path);
  const result = await convertCheckpoint(snapshot, cachedPath, {
    dtype: options.dtype,
    name: source.repo.split("/").at(-1)!,
    ...(options.onConvertProgress ? { onProgress: options.onConvertProgress } : {}),
  });
  return { path: result.path, sizeBytes: result.bytes, fromCache: !fetched, commit };
}

/** True when `path` is a folder holding a Hugging Face checkpoint (config.json). */
export async function isCheckpointFolder(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory() && (await stat(join(path, "config.json"))).isFile();
  } catch {
    return false;
  }
}

/** A local checkpoint folder, converted once per content (sha256 of its files) and dtype. */
export async function convertFolder(dir: string, options: FirstUseOptions): Promise<ConvertedModel> {
  const hash = createHash("sha256");
  hash.update(`berth-convert v${CONVERTER_VERSION}\0`);
  const names = (await readdir(dir))
    .filter(
      (name) =>
        name === "config.json" ||
        name.endsWith(".safetensors") ||
        name.endsWith(".safetensors.index.json") ||
        OPTIONAL_FILES.includes(name),
    )
    .sort();
  for (const name of names) {
    hash.update(`${name}\0`);
    for await (const chunk of createReadStream(join(dir, name), { highWaterMark: 4 * 1024 * 1024 })) {
      hash.update(chunk as Buffer);
    }
    hash.update("\0");
  }
  const digest = hash.digest("hex");
  const path = join(convertedRoot(options.env), "local", `${digest.slice(0, 32)}-${options.dtype}.gguf`);
  const size = await sizeOf(path);
  if (size !== undefined) return { path, sizeBytes: size, fromCache: true };
  await mkdir(dirname(path), { recursive: true });
  const result = await convertCheckpoint(dir, path, {
    dtype: options.dtype,
    ...(options.onConvertProgress ? { onProgress: options.onConvertProgress } : {}),
  });
  return { path: result.path, sizeBytes: result.bytes, fromCache: false };
}
