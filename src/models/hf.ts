// hf:// sources through the official @huggingface/hub client, in Python huggingface_hub's cache
// layout (models--ORG--REPO/{blobs,snapshots,refs}) so either side reads what the other fetched.
// The client resolves revisions, files and download URLs; the bytes go through downloadFile (lock,
// resume, sha256 of the LFS oid), which the client's own cache download lacks.
import { readdir, readFile, readlink, rename, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, relative } from "node:path";
import { Readable } from "node:stream";
import { fileDownloadInfo, HubApiError, downloadFile as hubDownloadFile, modelInfo } from "@huggingface/hub";
import {
  cacheWriteError,
  type DownloadProgress,
  downloadFile,
  ensureDir,
  exists,
  type RangeFetch,
} from "./download.js";
import { ModelSourceError } from "./errors.js";
import { httpRangeFetch, storeFetch } from "./https.js";
import { type HfSource, selectGgufFile } from "./sources.js";

export const HF_DEFAULT_ENDPOINT = "https://huggingface.co";
const COMMIT = /^[0-9a-f]{40}$/;

/** HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
export function hfHubCache(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  return join(hfHome(env), "hub");
}

export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HOME) return env.HF_HOME;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface");
}

export function hfEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.HF_ENDPOINT || HF_DEFAULT_ENDPOINT).replace(/\/+$/, "");
}

/** HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the token file (HF_TOKEN_PATH, HF_HOME/token). */
export async function hfToken(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const fromEnv = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv) return fromEnv.trim();
  try {
    const text = (await readFile(env.HF_TOKEN_PATH || join(hfHome(env), "token"), "utf8")).trim();
    return text === "" ? undefined : text;
  } catch {
    return undefined;
  }
}

/** HF_HUB_OFFLINE as huggingface_hub reads it: 1, ON, YES, TRUE. */
export function hfOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return ["1", "ON", "YES", "TRUE"].includes((env.HF_HUB_OFFLINE ?? "").toUpperCase());
}

export function hfRepoFolder(cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.replace("/", "--")}`);
}

export interface HfPullContext {
  env: NodeJS.ProcessEnv;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
  /** The model check, run on the downloaded bytes before they land in the cache. */
  verify?: (path: string) => Promise<void>;
  /** Ask the hub what the revision is now, even when the cache has an answer. */
  refresh?: boolean;
}

export interface HfPulled {
  /** snapshots/COMMIT/FILE: a symlink to the blob. */
  path: string;
  commit: string;
  file: string;
  sha256?: string;
  sizeBytes: number;
  fromCache: boolean;
  /** Bytes of an earlier interrupted download that were reused. */
  resumedFromBytes: number;
}

/** Every file below root, as slash-separated paths relative to it ([] when root is absent). */
export async function listFiles(root: string, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(join(root, prefix), { withFileTypes: true });
  } catch {
    return files;
  }
  for (const entry of entries) {
    const path = prefix === "" ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) files.push(...(await listFiles(root, path)));
    else files.push(path);
  }
  return files;
}

/** The commit a revision names in the cache: itself when a commit, else refs/REVISION. */
async function cachedCommit(storage: string, revision: string): Promise<string | undefined> {
  if (COMMIT.test(revision)) return revision;
  try {
    const commit = (await readFile(join(storage, "refs", revision), "utf8")).trim();
    return COMMIT.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** The cached file for the source, with no network: undefined when the cache cannot answer. */
export async function findHfCached(
  source: HfSource,
  cacheDir: string,
): Promise<{ path: string; commit: string; file: string } | undefined> {
  const storage = hfRepoFolder(cacheDir, source.repo);
  const commit = await cachedCommit(storage, source.revision);
  if (commit === undefined) return undefined;
  const snapshot = join(storage, "snapshots", commit);
  let file = source.file;
  if (file === undefined) {
    const picked = selectGgufFile(source.uri, await listFiles(snapshot), source.quant);
    if ("error" in picked) return undefined;
    file = picked.file;
  }
  const path = join(snapshot, file);
  // stat follows the link: a snapshot entry whose blob is gone is not cached.
  return (await exists(path)) ? { path, commit, file } : undefined;
}

function hubError(source: HfSource, endpoint: string, error: unknown, what: string): unknown {
  if (error instanceof ModelSourceError) {
    if (error.code === "BERTH_MODEL_SOURCE_UNREACHABLE") {
      return new ModelSourceError(error.code, `${error.message}; the model is not cached`);
    }
    return error;
  }
  if (error instanceof HubApiError) {
    const host = new URL(endpoint).host;
    if (error.statusCode === 401 || error.statusCode === 403) {
      return new ModelSourceError(
        "BERTH_MODEL_SOURCE_UNAUTHORIZED",
        `${source.uri}: ${host} answered ${error.statusCode} for ${what}: the repository is private or gated, or does not exist (set HF_TOKEN or run huggingface-cli login)`,
      );
    }
    if (error.statusCode === 404) {
      return new ModelSourceError(
        "BERTH_MODEL_SOURCE_NOT_FOUND",
        `${source.uri}: ${host} answered 404 for ${what}${error.message ? `: ${error.message}` : ""}`,
      );
    }
    return new ModelSourceError(
      "BERTH_MODEL_DOWNLOAD_FAILED",
      `${source.uri}: ${host} answered ${error.statusCode} for ${what}${error.message ? `: ${error.message}` : ""}`,
    );
  }
  return error;
}

async function writeAtomically(path: string, text: string): Promise<void> {
  await ensureDir(dirname(path));
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, text);
  await rename(temp, path);
}

/** snapshots/COMMIT/FILE -> ../../blobs/ETAG (relative, as huggingface_hub links). */
async function linkSnapshot(pointer: string, blob: string): Promise<void> {
  await ensureDir(dirname(pointer));
  const target = relative(dirname(pointer), blob);
  try {
    if ((await readlink(pointer)) === target) return;
    await unlink(pointer);
  } catch {
    // absent: create it below
  }
  const temp = `${pointer}.${process.pid}.link`;
  await symlink(target, temp);
  await rename(temp, pointer);
}

/** Finds, and downloads when needed, the GGUF file an hf:// source names. */
export async function pullHf(source: HfSource, context: HfPullContext): Promise<HfPulled> {
  const { env } = context;
  const cacheDir = hfHubCache(env);
  const storage = hfRepoFolder(cacheDir, source.repo);
  const pinned = COMMIT.test(source.revision);
  if (!context.refresh || pinned) {
    const cached = await findHfCached(source, cacheDir);
    if (cached) {
      return { ...cached, sizeBytes: (await stat(cached.path)).size, fromCache: true, resumedFromBytes: 0 };
    }
  }
  const endpoint = hfEndpoint(env);
  if (hfOffline(env)) {
    throw new ModelSourceError(
      "BERTH_MODEL_NOT_CACHED",
      `${source.uri}: the model is not cached in ${cacheDir} and HF_HUB_OFFLINE is set`,
    );
  }
  const token = await hfToken(env);
  // The token travels in our fetch, not the client's accessToken (which insists on "hf_"
  // tokens; mirrors issue others), and is dropped when a redirect leaves the hub's origin.
  const baseFetch = storeFetch(source.uri, context.signal);
  let lastContentType: string | undefined;
  const fetch: typeof globalThis.fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    if (token && !headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
    const response = await baseFetch(input, { ...init, headers });
    lastContentType = response.headers.get("content-type") ?? undefined;
    return response;
  };
  // The client's own complaints (an answer without the hub's headers) say what did arrive.
  const notHubLike = (error: unknown, what: string): unknown =>
    error instanceof HubApiError || error instanceof ModelSourceError || !(error instanceof Error)
      ? hubError(source, endpoint, error, what)
      : new ModelSourceError(
          "BERTH_MODEL_DOWNLOAD_FAILED",
          `${source.uri}: ${new URL(endpoint).host} did not answer like a Hugging Face hub for ${what} (${error.message}${lastContentType ? `; it sent ${lastContentType}` : ""})`,
        );
  const hub = { hubUrl: endpoint, fetch };

  let info: { sha?: string; filePaths?: string[] };
  try {
    info = (await modelInfo({
      ...hub,
      name: source.repo,
      revision: source.revision,
      additionalFields: ["sha", "filePaths"],
    })) as unknown as typeof info;
  } catch (error) {
    throw notHubLike(error, `${source.repo} at ${source.revision}`);
  }
  const commit = info.sha;
  if (commit === undefined || !COMMIT.test(commit)) {
    throw new ModelSourceError(
      "BERTH_MODEL_DOWNLOAD_FAILED",
      `${source.uri}: ${new URL(endpoint).host} named no commit for revision ${source.revision}`,
    );
  }
  const files = info.filePaths ?? [];
  let file = source.file;
  if (file === undefined) {
    const picked = selectGgufFile(source.uri, files, source.quant);
    if ("error" in picked) {
      if (
        picked.error.code === "BERTH_MODEL_NEEDS_CONVERSION" &&
        files.some((f) => f.endsWith(".safetensors"))
      ) {
        throw new ModelSourceError(
          "BERTH_MODEL_NEEDS_CONVERSION",
          `${source.uri}: the repository holds a safetensors checkpoint and no GGUF file; convert it with berth model convert`,
        );
      }
      throw picked.error;
    }
    file = picked.file;
  } else if (!files.includes(file)) {
    const ggufs = files.filter((f) => f.endsWith(".gguf"));
    throw new ModelSourceError(
      "BERTH_MODEL_SOURCE_NOT_FOUND",
      `${source.uri}: no file ${file} in ${source.repo} at ${source.revision}${ggufs.length > 0 ? ` (GGUF files: ${ggufs.join(", ")})` : ""}`,
    );
  }
  const refWrite = async (): Promise<void> => {
    if (!pinned) await writeAtomically(join(storage, "refs", source.revision), commit);
  };
  const pointer = join(storage, "snapshots", commit, file);
  try {
    if (await exists(pointer)) {
      await refWrite();
      return {
        path: pointer,
        commit,
        file,
        sizeBytes: (await stat(pointer)).size,
        fromCache: true,
        resumedFromBytes: 0,
      };
    }

    let download: Awaited<ReturnType<typeof fileDownloadInfo>>;
    try {
      download = await fileDownloadInfo({ ...hub, repo: source.repo, path: file, revision: commit });
    } catch (error) {
      throw notHubLike(error, file);
    }
    if (download === null) {
      throw new ModelSourceError(
        "BERTH_MODEL_SOURCE_NOT_FOUND",
        `${source.uri}: ${file} is not in ${source.repo}@${commit}`,
      );
    }
    // huggingface_hub names a blob by its normalized ETag: the LFS sha256, or the git blob sha1.
    const etag = download.etag.replace(/^W\//, "").replace(/"/g, "");
    const sha256 = /^[0-9a-f]{64}$/.test(etag) ? etag : undefined;
    const blob = join(storage, "blobs", etag);
    const downloadInfo = download;
    const fetchRange: RangeFetch = downloadInfo.xet
      ? async (offset) => {
          // Xet storage: the client reconstructs the bytes; slice() asks only for the rest.
          const whole = await hubDownloadFile({
            ...hub,
            repo: source.repo,
            path: file,
            revision: commit,
            downloadInfo,
          });
          if (whole === null)
            throw new ModelSourceError("BERTH_MODEL_SOURCE_NOT_FOUND", `${source.uri}: ${file} vanished`);
          const stream = whole
            .slice(offset)
            .stream() as unknown as import("node:stream/web").ReadableStream<Uint8Array>;
          return { body: Readable.fromWeb(stream), start: offset, totalBytes: downloadInfo.size };
        }
      : httpRangeFetch(
          source.uri,
          downloadInfo.url,
          token ? { headers: { authorization: `Bearer ${token}` } } : {},
        );
    const result = await downloadFile({
      source: source.uri,
      target: blob,
      lockPath: join(cacheDir, ".locks", `models--${source.repo.replace("/", "--")}`, `${etag}.berth.lock`),
      fetchRange,
      sizeBytes: downloadInfo.size,
      ...(sha256 ? { sha256 } : {}),
      ...(context.verify ? { verify: context.verify } : {}),
      ...(context.onProgress ? { onProgress: context.onProgress } : {}),
      ...(context.signal ? { signal: context.signal } : {}),
    });
    await linkSnapshot(pointer, blob);
    await refWrite();
    const pulled: HfPulled = {
      path: pointer,
      commit,
      file,
      sizeBytes: result.sizeBytes,
      fromCache: !result.downloaded,
      resumedFromBytes: result.resumedFromBytes,
    };
    if (result.sha256) pulled.sha256 = result.sha256;
    return pulled;
  } catch (error) {
    throw cacheWriteError(error, storage, source.uri);
  }
}
