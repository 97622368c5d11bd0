// The model store: turns any source URI into a whole, checked local GGUF file, downloading it
// once into the cache when needed. The one resolver `berth model pull`, `up`, `serve`, the
// Kubernetes init container and `build` share; nothing else downloads.
import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { modelCacheDir } from "../util/home.js";
import { checkModelFile } from "./check.js";
import { checkModelFileOnce, recordCheckedModel } from "./check-record.js";
import type { FirstUseOptions } from "./convert/first-use.js";
import type { DownloadProgress } from "./download.js";
import { ModelError, ModelSourceError } from "./errors.js";
import { type HttpsSource, type ModelSource, parseModelSource } from "./sources.js";

// The code of each source kind (the hub client, undici, the downloader, the converter, the tiny
// model writers: ~230 CPU ms of imports) is imported when a pull needs it, so that `berth serve` of a
// local file, every replica's cold start, loads none of it.
const firstUse = () => import("./convert/first-use.js");
const hf = () => import("./hf.js");

export interface PullProgress extends DownloadProgress {
  phase: "resolve" | "download" | "check" | "convert";
}

export interface PullOptions {
  /** Base for relative file paths (a spec file's folder); default the working directory. */
  baseDir?: string;
  env?: NodeJS.ProcessEnv;
  onProgress?: (progress: PullProgress) => void;
  signal?: AbortSignal;
  /** For checkpoints that need conversion (safetensors); the converter plugs in here. */
  dtype?: "f32" | "f16" | "q8_0";
  /** hf:// on a branch or tag: ask the hub for its commit now, even when the cache has one. */
  refresh?: boolean;
  /** The cache only: no request at all; a source that is not cached fails with BERTH_MODEL_NOT_CACHED. */
  offline?: boolean;
}

export interface PulledModel {
  /** A whole GGUF file that passed checkModelFile. */
  path: string;
  source: string;
  kind: ModelSource["kind"];
  /** hf://: the commit the revision resolved to. */
  revision?: string;
  /** When known: computed while downloading, or the source's (LFS oid, #sha256, S3 checksum). */
  sha256?: string;
  sizeBytes: number;
  /** True when no byte was fetched. */
  fromCache: boolean;
  /** hf://: the file in the repository. */
  file?: string;
}

/** What `berth model ls` lists: one record per pulled source, in BERTH_HOME/models/pulls. */
export interface PullRecord extends PulledModel {
  quantization?: string;
  pulledAt: string;
  lastUsedAt: string;
}

function recordsDir(env: NodeJS.ProcessEnv): string {
  return join(modelCacheDir(env), "pulls");
}

function recordPath(env: NodeJS.ProcessEnv, source: string): string {
  return join(recordsDir(env), `${createHash("sha256").update(source).digest("hex").slice(0, 24)}.json`);
}

/** The quantization a GGUF file name carries (name-Q4_K_M.gguf -> Q4_K_M). */
export function quantizationOf(file: string): string | undefined {
  const base = (file.split("/").pop() ?? file).replace(/(-\d{5}-of-\d{5})?\.gguf$/i, "");
  const tag = /[-.]((?:I?Q\d[A-Z0-9_]*)|F16|F32|BF16)$/i.exec(base)?.[1];
  return tag?.toUpperCase();
}

async function writeRecord(env: NodeJS.ProcessEnv, pulled: PulledModel): Promise<void> {
  const path = recordPath(env, pulled.source);
  let pulledAt = new Date().toISOString();
  try {
    const previous = JSON.parse(await readFile(path, "utf8")) as Partial<PullRecord>;
    if (previous.path === pulled.path && previous.pulledAt) pulledAt = previous.pulledAt;
  } catch {
    // first pull of this source
  }
  const quantization = quantizationOf(pulled.file ?? pulled.path);
  const record: PullRecord = {
    ...pulled,
    ...(quantization ? { quantization } : {}),
    pulledAt,
    lastUsedAt: new Date().toISOString(),
  };
  await mkdir(recordsDir(env), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(record, null, 2)}\n`);
  await rename(temp, path);
}

/** The pull records whose files still exist. */
export async function listPulled(env: NodeJS.ProcessEnv = process.env): Promise<PullRecord[]> {
  let names: string[];
  try {
    names = await readdir(recordsDir(env));
  } catch {
    return [];
  }
  const records: PullRecord[] = [];
  for (const name of names.filter((n) => n.endsWith(".json")).sort()) {
    try {
      const record = JSON.parse(await readFile(join(recordsDir(env), name), "utf8")) as PullRecord;
      await stat(record.path);
      records.push(record);
    } catch {
      // a record of a removed file, or one being written: not listed
    }
  }
  return records.sort((a, b) => a.source.localeCompare(b.source));
}

/**
 * Everything `berth model ls` shows: the pull records, plus GGUF files in the shared HF cache that
 * another tool (Python's huggingface_hub, huggingface-cli) fetched, as hf://ORG/REPO/FILE@COMMIT.
 */
export async function listCached(env: NodeJS.ProcessEnv = process.env): Promise<PullRecord[]> {
  const records = await listPulled(env);
  const known = new Set(records.map((record) => record.path));
  const { hfHubCache, listFiles } = await hf();
  const cacheDir = hfHubCache(env);
  let repos: string[];
  try {
    repos = (await readdir(cacheDir)).filter((name) => name.startsWith("models--"));
  } catch {
    repos = [];
  }
  for (const folder of repos.sort()) {
    const repo = folder.slice("models--".length).replace("--", "/");
    const snapshots = join(cacheDir, folder, "snapshots");
    let commits: string[];
    try {
      commits = await readdir(snapshots);
    } catch {
      continue;
    }
    for (const commit of commits) {
      for (const file of await listFiles(join(snapshots, commit))) {
        if (!file.endsWith(".gguf")) continue;
        const path = join(snapshots, commit, file);
        if (known.has(path)) continue;
        let info: import("node:fs").Stats;
        try {
          info = await stat(path);
        } catch {
          continue;
        }
        const quantization = quantizationOf(file);
        records.push({
          path,
          source: `hf://${repo}/${file}@${commit}`,
          kind: "hf",
          revision: commit,
          file,
          sizeBytes: info.size,
          fromCache: true,
          ...(quantization ? { quantization } : {}),
          pulledAt: info.mtime.toISOString(),
          lastUsedAt: info.atime.toISOString(),
        });
      }
    }
  }
  return records.sort((a, b) => a.source.localeCompare(b.source));
}

/** Removes the pull record of a source and, when nothing else refers to it, its file. */
export async function removePulled(
  source: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ removed: PullRecord[] }> {
  const all = await listCached(env);
  const matching = all.filter((record) => record.source === source);
  if (matching.length === 0) {
    throw new ModelSourceError(
      "BERTH_MODEL_NOT_CACHED",
      `${source}: no pulled model has this source (see berth model ls)`,
    );
  }
  const { realpath } = await import("node:fs/promises");
  const real = async (path: string): Promise<string> => realpath(path).catch(() => path);
  for (const record of matching) {
    await rm(recordPath(env, record.source), { force: true });
    const mine = await real(record.path);
    let shared = false;
    for (const other of all) {
      if (other.source !== record.source && (await real(other.path)) === mine) shared = true;
    }
    if (!shared && record.kind !== "file") await removeCachedFile(record);
  }
  return { removed: matching };
}

/** Deletes the cached bytes of a record (for hf: the snapshot link and its blob). */
async function removeCachedFile(record: PullRecord): Promise<void> {
  if (record.kind === "hf") {
    const { realpath } = await import("node:fs/promises");
    const blob = await realpath(record.path).catch(() => undefined);
    await rm(record.path, { force: true });
    if (blob) await rm(blob, { force: true });
    return;
  }
  await rm(record.path, { force: true });
}

/** What arrived instead of a model, in words: an HTML page, JSON, text, or bytes. */
export async function describeArrival(path: string): Promise<string> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(Math.min(size, 4096));
    await handle.read(head, 0, head.length, 0);
    const text = head.toString("utf8");
    if (/^\s*(<!doctype html|<html)/i.test(text)) {
      const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1]?.trim();
      return `an HTML page${title ? ` titled "${title.slice(0, 80)}"` : ""} (${size} bytes)`;
    }
    if (/^\s*[[{]/.test(text)) return `JSON (${size} bytes): ${text.replace(/\s+/g, " ").slice(0, 100)}`;
    if (head.subarray(0, 4).toString("latin1") === "GGUF") return `a GGUF file of ${size} bytes`;
    if (size === 0) return "an empty file";
    // biome-ignore lint/suspicious/noControlCharactersInRegex: telling text from binary
    if (!/[\u0000-\u0008\u000e-\u001f]/.test(text)) {
      return `${size} bytes of text starting "${text.replace(/\s+/g, " ").slice(0, 60)}"`;
    }
    return `${size} bytes that are not a GGUF file`;
  } finally {
    await handle.close();
  }
}

/** The model check on downloaded bytes, with what arrived in the message when it fails. */
function verifyDownloaded(source: string, options: PullOptions): (path: string) => Promise<void> {
  return async (path) => {
    options.onProgress?.({ phase: "check", source, receivedBytes: 0, resumedFromBytes: 0 });
    try {
      await checkModelFile(path);
    } catch (error) {
      if (!(error instanceof ModelError)) throw error;
      const arrived = await describeArrival(path).catch(() => "a file");
      const detail = error.message.replace(`${path}: `, "");
      throw new ModelSourceError(
        "BERTH_MODEL_INTEGRITY",
        `${source}: what arrived is not a usable model: ${arrived}; ${detail} (${error.code})`,
      );
    }
  };
}

function downloadProgress(options: PullOptions): ((p: DownloadProgress) => void) | undefined {
  const report = options.onProgress;
  return report ? (progress) => report({ ...progress, phase: "download" }) : undefined;
}

/** Fails with BERTH_MODEL_NOT_CACHED when offline and `target` is not there. */
async function assertCachedWhenOffline(options: PullOptions, source: string, target: string): Promise<void> {
  if (!options.offline) return;
  try {
    await stat(target);
  } catch {
    throw new ModelSourceError(
      "BERTH_MODEL_NOT_CACHED",
      `${source}: the model is not cached (looked for ${target})`,
    );
  }
}

async function pullHttps(source: HttpsSource, options: PullOptions, env: NodeJS.ProcessEnv) {
  const key = createHash("sha256").update(source.url).digest("hex").slice(0, 16);
  const target = join(modelCacheDir(env), "https", key, source.fileName);
  await assertCachedWhenOffline(options, source.uri, target);
  const onProgress = downloadProgress(options);
  const [{ downloadFile }, { httpRangeFetch }] = await Promise.all([
    import("./download.js"),
    import("./https.js"),
  ]);
  const result = await downloadFile({
    source: source.uri,
    target,
    fetchRange: httpRangeFetch(source.uri, source.url),
    verify: verifyDownloaded(source.uri, options),
    ...(source.sha256 ? { sha256: source.sha256 } : {}),
    ...(onProgress ? { onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return result;
}

/** Checkpoints without GGUF convert to f16 unless the caller asks for another dtype. */
const DEFAULT_CONVERT_DTYPE = "f16";

function firstUseOptions(options: PullOptions, env: NodeJS.ProcessEnv, source: string): FirstUseOptions {
  return {
    env,
    dtype: options.dtype ?? DEFAULT_CONVERT_DTYPE,
    onConvertProgress: ({ bytesWritten, totalBytes }) =>
      options.onProgress?.({
        phase: "convert",
        source,
        receivedBytes: bytesWritten,
        totalBytes,
        resumedFromBytes: 0,
      }),
  };
}

/**
 * Resolves a source to a whole, checked local GGUF file, downloading it into the cache when it is
 * not there. Throws ModelSourceError (source, network, cache) or ModelError (the model check).
 */
export async function pullModel(source: string, options: PullOptions = {}): Promise<PulledModel> {
  const env = options.env ?? process.env;
  const parsed = parseModelSource(source);
  options.onProgress?.({ phase: "resolve", source, receivedBytes: 0, resumedFromBytes: 0 });
  let pulled: PulledModel;
  let checkedOnDownload = false;
  switch (parsed.kind) {
    case "tiny": {
      const { ensureTinyModel } = await import("./tiny.js");
      const path = await ensureTinyModel({
        shape: parsed.shape,
        dtype: parsed.dtype,
        ...(env.BERTH_HOME ? { home: env.BERTH_HOME } : {}),
      });
      pulled = { path, source, kind: "tiny", sizeBytes: (await stat(path)).size, fromCache: true };
      break;
    }
    case "file": {
      const path = isAbsolute(parsed.path)
        ? parsed.path
        : resolve(options.baseDir ?? process.cwd(), parsed.path);
      const info = await stat(path).catch(() => undefined);
      // A Hugging Face checkpoint folder: converted once per content and dtype (E3's converter).
      if (info?.isDirectory()) {
        const { convertFolder, isCheckpointFolder } = await firstUse();
        if (await isCheckpointFolder(path)) {
          const converted = await convertFolder(path, firstUseOptions(options, env, source));
          pulled = {
            path: converted.path,
            source,
            kind: "file",
            sizeBytes: converted.sizeBytes,
            fromCache: converted.fromCache,
          };
          break;
        }
      }
      if (!info?.isFile()) {
        throw new ModelSourceError("BERTH_MODEL_SOURCE_NOT_FOUND", `${source}: no model file at ${path}`);
      }
      const size = info.size;
      pulled = { path, source, kind: "file", sizeBytes: size, fromCache: true };
      break;
    }
    case "https": {
      const result = await pullHttps(parsed, options, env);
      pulled = {
        path: result.path,
        source,
        kind: "https",
        sizeBytes: result.sizeBytes,
        fromCache: !result.downloaded,
      };
      checkedOnDownload = result.downloaded;
      const sha256 = result.sha256 ?? parsed.sha256;
      if (sha256) pulled.sha256 = sha256;
      break;
    }
    case "s3": {
      // E2's S3 client, through the same download primitive and model check.
      const { pullS3 } = await import("./s3.js");
      const onProgress = downloadProgress(options);
      const result = await pullS3(parsed, {
        env,
        cacheDir: modelCacheDir(env),
        verify: verifyDownloaded(source, options),
        ...(onProgress ? { onProgress } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.offline ? { offline: true } : {}),
      });
      pulled = {
        path: result.path,
        source,
        kind: "s3",
        revision: result.revision,
        sizeBytes: result.sizeBytes,
        fromCache: result.fromCache,
      };
      if (result.sha256) pulled.sha256 = result.sha256;
      checkedOnDownload = !result.fromCache;
      break;
    }
    case "hf": {
      const [{ pullHf }, { convertHfCheckpoint, findConvertedHf }] = await Promise.all([hf(), firstUse()]);
      const onProgress = downloadProgress(options);
      const hfContext = {
        env: options.offline ? { ...env, HF_HUB_OFFLINE: "1" } : env,
        verify: verifyDownloaded(source, options),
        ...(onProgress ? { onProgress } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.refresh ? { refresh: true } : {}),
      };
      // A safetensors repo converted earlier: its commit's GGUF, with no request (E3's converter).
      const dtype = options.dtype ?? DEFAULT_CONVERT_DTYPE;
      const convertedEarlier =
        parsed.file === undefined && !options.refresh ? await findConvertedHf(parsed, env, dtype) : undefined;
      let result: Awaited<ReturnType<typeof pullHf>> | undefined;
      if (!convertedEarlier) {
        try {
          result = await pullHf(parsed, hfContext);
        } catch (error) {
          if (!(error instanceof ModelSourceError && error.code === "BERTH_MODEL_NEEDS_CONVERSION"))
            throw error;
        }
      }
      if (result === undefined) {
        const converted =
          convertedEarlier ??
          (await convertHfCheckpoint(parsed, hfContext, firstUseOptions(options, env, source)));
        pulled = {
          path: converted.path,
          source,
          kind: "hf",
          revision: converted.commit!,
          sizeBytes: converted.sizeBytes,
          fromCache: converted.fromCache,
        };
        break;
      }
      pulled = {
        path: result.path,
        source,
        kind: "hf",
        revision: result.commit,
        file: result.file,
        sizeBytes: result.sizeBytes,
        fromCache: result.fromCache,
      };
      if (result.sha256) pulled.sha256 = result.sha256;
      checkedOnDownload = !result.fromCache;
      break;
    }
  }
  // Every path handed out passes the check: fresh downloads were checked before the rename
  // (verify); anything else (cached, converted, local) is checked here.
  if (checkedOnDownload) {
    await recordCheckedModel(pulled.path, env);
  } else {
    options.onProgress?.({ phase: "check", source, receivedBytes: 0, resumedFromBytes: 0 });
    await checkModelFileOnce(pulled.path, env);
  }
  if (pulled.kind !== "tiny") await writeRecord(env, pulled).catch(() => undefined);
  return pulled;
}

/** Where the caches are, for `berth model ls` and the README. */
export async function cacheLocations(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ berth: string; huggingFace: string }> {
  const { hfHubCache } = await hf();
  return { berth: modelCacheDir(env), huggingFace: hfHubCache(env) };
}
