// The one download primitive of the model store: bytes go to `<target>.incomplete` under a lock
// per target, resume with a range fetch from the size on disk, are checked (size, sha256, a caller's
// verify) and only then renamed into place. Sources (hf, https, s3) plug in a RangeFetch.
import { createHash, type Hash } from "node:crypto";
import { once } from "node:events";
import { constants, createReadStream, createWriteStream } from "node:fs";
import { access, mkdir, open, readFile, rename, rm, stat, truncate, unlink, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { ModelSourceError } from "./errors.js";

/** What a source answers to "send the bytes from `offset` on". */
export interface RangeResponse {
  /** The bytes from `start` to the end of the object. */
  body: AsyncIterable<Uint8Array>;
  /** Where body begins: the offset asked for, or 0 when the server ignored the range. */
  start: number;
  /** The whole object's size, when the source says. */
  totalBytes?: number;
  /** The first bytes' media type, for messages about what arrived (e.g. text/html). */
  contentType?: string;
}

/** Fetches the object from `offset`. Throws TransientError for what a retry may fix. */
export type RangeFetch = (offset: number, signal: AbortSignal) => Promise<RangeResponse>;

/** A failure worth retrying (429, 503, a reset connection), with the server's wait if it gave one. */
export class TransientError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "TransientError";
  }
}

export interface DownloadProgress {
  /** The source URI, for display. */
  source: string;
  /** Bytes of the object on disk now (including those resumed from). */
  receivedBytes: number;
  totalBytes?: number;
  /** Bytes that were already on disk when this download started. */
  resumedFromBytes: number;
}

export interface DownloadOptions {
  /** The source URI: used in messages and progress. */
  source: string;
  /** The final path. Exists only when whole and verified. */
  target: string;
  fetchRange: RangeFetch;
  /** Expected sha256 (hex); the download is refused when the bytes differ. */
  sha256?: string;
  /** Expected size; a server that says otherwise is refused before any byte is written. */
  sizeBytes?: number;
  /** The partial file; default `${target}.incomplete` (huggingface_hub's name). */
  incompletePath?: string;
  /** The lock file; default `${target}.lock`. */
  lockPath?: string;
  /** Runs on the complete, hash-checked temp file before the rename; throw to refuse it. */
  verify?: (incompletePath: string) => Promise<void>;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Retries after cut connections and 429/503 without progress, beyond the first try. Default 5. */
  retries?: number;
  /** Longest wait between retries, and longest Retry-After honoured. Default 30 s. */
  maxRetryWaitMs?: number;
}

export interface DownloadResult {
  path: string;
  /** The sha256 of the bytes (computed; or the expected one when the file was already there). */
  sha256?: string;
  sizeBytes: number;
  /** False when the target already existed (cached, or another process downloaded it). */
  downloaded: boolean;
  /** Bytes on disk from an earlier, interrupted download that were not fetched again. */
  resumedFromBytes: number;
  /** Bytes received over the network by this call. */
  fetchedBytes: number;
}

const LOCK_STALE_MS = 60_000;
const LOCK_HEARTBEAT_MS = 5_000;

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Turns file-system errors into one clear line; others pass through. */
export function cacheWriteError(error: unknown, path: string, source: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new ModelSourceError(
      "BERTH_MODEL_CACHE_WRITE",
      `${source}: no space left on the device of ${dirname(path)} (${code}); free space or point BERTH_HOME / HF_HUB_CACHE elsewhere`,
    );
  }
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new ModelSourceError(
      "BERTH_MODEL_CACHE_WRITE",
      `${source}: cannot write ${path} (${code}: ${code === "EROFS" ? "read-only file system" : "permission denied"}); point BERTH_HOME / HF_HUB_CACHE at a writable folder`,
    );
  }
  return error;
}

/**
 * mkdir -p that reports why it failed: Node's recursive mkdir says ENOENT on a read-only file
 * system, so ask the nearest existing ancestor whether it is writable.
 */
export async function ensureDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    let ancestor = dirname(path);
    while (!(await exists(ancestor)) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
    await access(ancestor, constants.W_OK);
    throw error;
  }
}

interface LockOwner {
  pid: number;
  host: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes the lock file (O_EXCL) or waits for it. A lock is stale when its owner on this host is
 * gone, or when nobody refreshed it for a minute (owners on other hosts sharing a volume).
 */
async function acquireLock(lockPath: string, signal: AbortSignal): Promise<() => Promise<void>> {
  const me: LockOwner = { pid: process.pid, host: hostname() };
  let wait = 50;
  for (;;) {
    signal.throwIfAborted();
    try {
      const handle = await open(lockPath, "wx");
      await handle.writeFile(JSON.stringify(me));
      await handle.close();
      const heartbeat = setInterval(() => {
        const now = new Date();
        utimes(lockPath, now, now).catch(() => undefined);
      }, LOCK_HEARTBEAT_MS);
      heartbeat.unref();
      return async () => {
        clearInterval(heartbeat);
        await unlink(lockPath).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (await lockIsStale(lockPath)) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    await delay(wait, undefined, { signal });
    wait = Math.min(wait * 2, 500);
  }
}

async function lockIsStale(lockPath: string): Promise<boolean> {
  try {
    const [text, info] = await Promise.all([readFile(lockPath, "utf8"), stat(lockPath)]);
    if (Date.now() - info.mtimeMs > LOCK_STALE_MS) return true;
    const owner = JSON.parse(text) as Partial<LockOwner>;
    return owner.host === hostname() && typeof owner.pid === "number" && !processAlive(owner.pid);
  } catch {
    // Being written right now (empty) or just removed: not stale; the next try settles it.
    return false;
  }
}

async function hashFilePrefix(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(chunk as Buffer);
  }
}

async function sizeOnDisk(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/**
 * Downloads to options.target. Two callers (processes too) for one target download it once: the
 * second waits for the lock and then finds the file. A crash leaves only the .incomplete file,
 * which the next call resumes.
 */
export async function downloadFile(options: DownloadOptions): Promise<DownloadResult> {
  const { source, target } = options;
  const incomplete = options.incompletePath ?? `${target}.incomplete`;
  const lockPath = options.lockPath ?? `${target}.lock`;
  const signal = options.signal ?? new AbortController().signal;
  const cached = async (): Promise<DownloadResult | undefined> => {
    if (!(await exists(target))) return undefined;
    const result: DownloadResult = {
      path: target,
      sizeBytes: (await stat(target)).size,
      downloaded: false,
      resumedFromBytes: 0,
      fetchedBytes: 0,
    };
    if (options.sha256) result.sha256 = options.sha256;
    return result;
  };
  const already = await cached();
  if (already) return already;

  let release: () => Promise<void>;
  try {
    await ensureDir(dirname(target));
    await ensureDir(dirname(lockPath));
    await ensureDir(dirname(incomplete));
    release = await acquireLock(lockPath, signal);
  } catch (error) {
    throw cacheWriteError(error, dirname(target), source);
  }
  try {
    const done = await cached();
    if (done) return done;
    return await downloadLocked(options, incomplete, signal);
  } finally {
    await release();
  }
}

async function downloadLocked(
  options: DownloadOptions,
  incomplete: string,
  signal: AbortSignal,
): Promise<DownloadResult> {
  const { source, target } = options;
  const retries = options.retries ?? 5;
  const maxWait = options.maxRetryWaitMs ?? 30_000;
  let size = await sizeOnDisk(incomplete);
  if (options.sizeBytes !== undefined && size > options.sizeBytes) {
    await rm(incomplete, { force: true });
    size = 0;
  }
  const resumedFromBytes = size;
  let hash = createHash("sha256");
  if (size > 0) await hashFilePrefix(incomplete, hash);
  let fetchedBytes = 0;
  let failures = 0;
  let totalBytes = options.sizeBytes;
  let contentType: string | undefined;
  const report = (): void =>
    options.onProgress?.({
      source,
      receivedBytes: size,
      resumedFromBytes,
      ...(totalBytes !== undefined ? { totalBytes } : {}),
    });

  for (;;) {
    signal.throwIfAborted();
    if (totalBytes !== undefined && size === totalBytes) break;
    let response: RangeResponse;
    let progressed = false;
    try {
      response = await options.fetchRange(size, signal);
      if (response.start !== size) {
        if (response.start !== 0) {
          throw new ModelSourceError(
            "BERTH_MODEL_DOWNLOAD_FAILED",
            `${source}: asked for bytes from ${size}, the server sent them from ${response.start}`,
          );
        }
        // The server ignored the range and sends the whole object: start over with it.
        await truncate(incomplete, 0).catch(() => undefined);
        size = 0;
        hash = createHash("sha256");
      }
      contentType ??= response.contentType;
      if (response.totalBytes !== undefined) {
        if (options.sizeBytes !== undefined && response.totalBytes !== options.sizeBytes) {
          throw new ModelSourceError(
            "BERTH_MODEL_INTEGRITY",
            `${source}: the server sends ${response.totalBytes} bytes, the source promised ${options.sizeBytes}`,
          );
        }
        totalBytes = response.totalBytes;
      }
      report();
      const out = createWriteStream(incomplete, { flags: "a", highWaterMark: 1024 * 1024 });
      const writeFailed = new Promise<never>((_, reject) => out.once("error", reject));
      writeFailed.catch(() => undefined);
      try {
        for await (const chunk of response.body) {
          hash.update(chunk);
          size += chunk.byteLength;
          fetchedBytes += chunk.byteLength;
          progressed = true;
          if (!out.write(chunk)) await Promise.race([once(out, "drain"), writeFailed]);
          report();
        }
      } finally {
        out.end();
        await Promise.race([once(out, "close"), writeFailed]);
      }
      if (totalBytes === undefined) totalBytes = size;
      if (size < totalBytes)
        throw new TransientError(`the connection closed at byte ${size} of ${totalBytes}`);
      break;
    } catch (error) {
      const written = cacheWriteError(error, incomplete, source);
      if (written !== error) {
        // A full disk or a lost permission: leave nothing behind that fills the disk further.
        await rm(incomplete, { force: true });
        throw written;
      }
      if (signal.aborted) throw signal.reason ?? error;
      if (error instanceof ModelSourceError) throw error;
      // A cut body (undici's "terminated", ECONNRESET) is transient like a 429/503.
      const code = (error as { code?: string }).code ?? "";
      const transient =
        error instanceof TransientError ||
        [
          "ECONNRESET",
          "EPIPE",
          "UND_ERR_SOCKET",
          "UND_ERR_BODY_TIMEOUT",
          "ERR_STREAM_PREMATURE_CLOSE",
        ].includes(code) ||
        /terminated|other side closed|socket hang up|premature close/i.test(
          String((error as Error)?.message),
        );
      if (!transient) throw error;
      // Only bytes on disk count; they equal the hashed ones unless a write was lost.
      const onDisk = await sizeOnDisk(incomplete);
      if (onDisk !== size) {
        size = onDisk;
        hash = createHash("sha256");
        await hashFilePrefix(incomplete, hash);
      }
      failures = progressed ? 1 : failures + 1;
      if (failures > retries) {
        throw new ModelSourceError(
          "BERTH_MODEL_DOWNLOAD_FAILED",
          `${source}: gave up after ${retries + 1} tries: ${(error as Error).message} (${size} bytes kept in ${incomplete}; pulling again resumes)`,
        );
      }
      const retryAfter = error instanceof TransientError ? error.retryAfterMs : undefined;
      if (retryAfter !== undefined && retryAfter > maxWait) {
        throw new ModelSourceError(
          "BERTH_MODEL_SOURCE_UNREACHABLE",
          `${source}: the server asks to retry after ${Math.round(retryAfter / 1000)} s: ${(error as Error).message}`,
        );
      }
      await delay(retryAfter ?? Math.min(250 * 2 ** (failures - 1), maxWait), undefined, { signal });
    }
  }

  const sha256 = hash.digest("hex");
  if (options.sizeBytes !== undefined && size !== options.sizeBytes) {
    await rm(incomplete, { force: true });
    throw new ModelSourceError(
      "BERTH_MODEL_INTEGRITY",
      `${source}: received ${size} bytes, expected ${options.sizeBytes}`,
    );
  }
  if (options.sha256 !== undefined && sha256 !== options.sha256.toLowerCase()) {
    await rm(incomplete, { force: true });
    throw new ModelSourceError(
      "BERTH_MODEL_INTEGRITY",
      `${source}: sha256 of the ${size} bytes received is ${sha256}, expected ${options.sha256.toLowerCase()}${describeArrival(contentType)}; the partial file was removed`,
    );
  }
  if (options.verify) {
    try {
      await options.verify(incomplete);
    } catch (error) {
      await rm(incomplete, { force: true });
      throw error;
    }
  }
  try {
    await rename(incomplete, target);
  } catch (error) {
    throw cacheWriteError(error, target, source);
  }
  return { path: target, sha256, sizeBytes: size, downloaded: true, resumedFromBytes, fetchedBytes };
}

function describeArrival(contentType: string | undefined): string {
  return contentType && !/octet-stream|binary/i.test(contentType) ? ` (the server sent ${contentType})` : "";
}
