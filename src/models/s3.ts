// s3:// model sources through the AWS SDK v3: one client per pull from the usual AWS settings
// (s3-config.ts), HeadObject for size, ETag and the SHA-256 checksum S3 keeps, ranged GetObject
// for the store's resumable download, and SDK failures turned into ModelSourceErrors that say what to fix.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Readable } from "node:stream";
import {
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  S3Client,
} from "@aws-sdk/client-s3";
import { type DownloadProgress, downloadFile, TransientError } from "./download.js";
import { ModelSourceError } from "./errors.js";
import { loadS3Settings, type S3Settings } from "./s3-config.js";
import type { S3Source } from "./sources.js";

export interface S3ObjectInfo {
  size: number;
  /** The object's ETag, quoted as S3 sends it: a resumed GET asks for this exact version (If-Match). */
  etag: string;
  /** Lower-case hex SHA-256 of the whole object, when S3 holds a full-object SHA-256 checksum. */
  sha256?: string;
  /**
   * Lower-case hex MD5 of the whole object, when the ETag is one (a single-part upload without
   * SSE-KMS: 32 hex digits, no "-N" part count). Anything else is opaque.
   */
  md5?: string;
  lastModified?: Date;
}

export interface S3Connection {
  readonly client: S3Client;
  readonly settings: S3Settings;
  /** Releases the client's sockets. */
  close(): void;
}

/** A client for the environment's AWS settings (env, AWS_PROFILE, ~/.aws/config and credentials). */
export async function connectS3(env: NodeJS.ProcessEnv = process.env): Promise<S3Connection> {
  const settings = await loadS3Settings(env);
  // The SDK warns on stderr that its 2027 releases will need Node 22: nothing a Berth user can act on.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const client = new S3Client({
    region: settings.region,
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    forcePathStyle: settings.forcePathStyle,
    // Static keys when configured; otherwise the SDK's chain (SSO, web identity, instance roles).
    ...(settings.credentials === undefined
      ? { profile: settings.profile }
      : { credentials: settings.credentials }),
    // The store verifies the whole file itself (resumed bytes included); the SDK's own check of a
    // response body cannot cover a ranged GET, so it is left to the store.
    responseChecksumValidation: "WHEN_REQUIRED",
    requestChecksumCalculation: "WHEN_REQUIRED",
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 15_000, requestTimeout: 120_000 },
  });
  return { client, settings, close: () => client.destroy() };
}

function hexFromBase64(value: string): string {
  return Buffer.from(value, "base64").toString("hex");
}

/** Size, ETag and checksums of the object (HeadObject with ChecksumMode ENABLED). */
export async function headS3Object(
  connection: S3Connection,
  source: S3Source,
  signal?: AbortSignal,
): Promise<S3ObjectInfo> {
  let head: HeadObjectCommandOutput;
  try {
    head = await connection.client.send(
      new HeadObjectCommand({ Bucket: source.bucket, Key: source.key, ChecksumMode: "ENABLED" }),
      { abortSignal: signal },
    );
  } catch (error) {
    throw s3Error(source, connection.settings, error);
  }
  if (head.ContentLength === undefined || head.ETag === undefined) {
    throw new ModelSourceError(
      "BERTH_MODEL_DOWNLOAD_FAILED",
      `${source.uri}: the server sent no ${head.ETag === undefined ? "ETag" : "Content-Length"} for the object`,
    );
  }
  return objectInfoFrom({ ...head, ContentLength: head.ContentLength, ETag: head.ETag });
}

/**
 * What a HeadObject answer says about the whole object (pure). Only a full-object SHA-256 is the
 * file's: a multipart upload's is a checksum of part checksums ("…-N", type COMPOSITE). Only a
 * single-part ETag (32 hex digits, no "-N") is the file's MD5.
 */
export function objectInfoFrom(head: {
  ContentLength: number;
  ETag: string;
  ChecksumSHA256?: string | undefined;
  ChecksumType?: string | undefined;
  LastModified?: Date | undefined;
}): S3ObjectInfo {
  const info: S3ObjectInfo = { size: head.ContentLength, etag: head.ETag };
  const sha = head.ChecksumSHA256;
  if (sha && !/-\d+$/.test(sha) && (head.ChecksumType ?? "FULL_OBJECT") === "FULL_OBJECT") {
    const hex = hexFromBase64(sha);
    if (/^[0-9a-f]{64}$/.test(hex)) info.sha256 = hex;
  }
  const plainEtag = /^"?([0-9a-fA-F]{32})"?$/.exec(head.ETag)?.[1];
  if (plainEtag) info.md5 = plainEtag.toLowerCase();
  if (head.LastModified) info.lastModified = head.LastModified;
  return info;
}

export interface S3RangeOptions {
  /** First byte wanted; the rest of the object follows. */
  start: number;
  /** Only this version of the object (If-Match): a changed object fails with S3ObjectChangedError. */
  etag?: string;
  signal?: AbortSignal;
}

export interface S3Range {
  body: Readable;
  /** Bytes this response carries (from start to the end of the object). */
  length: number;
}

/** The object's bytes from `start` on: a ranged GetObject, so a cut download resumes where it stopped. */
export async function getS3Range(
  connection: S3Connection,
  source: S3Source,
  options: S3RangeOptions,
): Promise<S3Range> {
  try {
    const response = await connection.client.send(
      new GetObjectCommand({
        Bucket: source.bucket,
        Key: source.key,
        ...(options.start > 0 ? { Range: `bytes=${options.start}-` } : {}),
        ...(options.etag === undefined ? {} : { IfMatch: options.etag }),
      }),
      { abortSignal: options.signal },
    );
    const body = response.Body as Readable | undefined;
    if (!body || response.ContentLength === undefined) {
      body?.destroy();
      throw new ModelSourceError(
        "BERTH_MODEL_DOWNLOAD_FAILED",
        `${source.uri}: the server answered GetObject without a body length`,
      );
    }
    if (options.start > 0 && !response.ContentRange) {
      // A server that ignores Range sends the whole object: appending it would corrupt the file.
      body.destroy();
      throw new ModelSourceError(
        "BERTH_MODEL_DOWNLOAD_FAILED",
        `${source.uri}: the server ignored the byte range (no Content-Range); cannot resume`,
      );
    }
    return { body, length: response.ContentLength };
  } catch (error) {
    if (error instanceof ModelSourceError) throw error;
    throw s3Error(source, connection.settings, error);
  }
}

/** A resumed GET found another version of the object (If-Match failed): the download restarts from 0. */
export class S3ObjectChangedError extends ModelSourceError {
  constructor(uri: string) {
    super(
      "BERTH_MODEL_DOWNLOAD_FAILED",
      `${uri}: the object changed since the download started (ETag differs)`,
    );
    this.name = "S3ObjectChangedError";
  }
}

function where(settings: S3Settings): string {
  return settings.endpoint === undefined
    ? `AWS region ${settings.region}`
    : `endpoint ${settings.endpoint} (from ${settings.endpointFrom})`;
}

/** Turns an SDK or network failure into one line that names the object, the server and what to fix. */
export function s3Error(source: S3Source, settings: S3Settings, error: unknown): ModelSourceError {
  if (error instanceof ModelSourceError) return error;
  const name = (error as { name?: string }).name ?? "";
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const code = (error as { code?: string }).code ?? "";
  const detail = error instanceof Error ? error.message.split("\n")[0] : String(error);
  if (name === "AbortError") {
    return new ModelSourceError("BERTH_MODEL_DOWNLOAD_FAILED", `${source.uri}: the download was cancelled`);
  }
  if (name === "CredentialsProviderError" || /Could not load credentials/i.test(detail ?? "")) {
    return new ModelSourceError(
      "BERTH_MODEL_SOURCE_UNAUTHORIZED",
      `${source.uri}: no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with keys in ~/.aws/credentials)`,
    );
  }
  if (
    [
      "InvalidAccessKeyId",
      "SignatureDoesNotMatch",
      "AccessDenied",
      "InvalidToken",
      "ExpiredToken",
      "Forbidden",
    ].includes(name) ||
    status === 401 ||
    status === 403
  ) {
    // A HEAD answer has no body: the SDK names a bare 403 "Unknown" or "Forbidden"; the status says more.
    const why =
      name && !/^\d+$/.test(name) && !["Forbidden", "Unknown"].includes(name)
        ? name
        : `HTTP ${status ?? 403}`;
    return new ModelSourceError(
      "BERTH_MODEL_SOURCE_UNAUTHORIZED",
      `${source.uri}: ${where(settings)} refused the credentials from ${settings.credentialsFrom} (${why})`,
    );
  }
  if (name === "NoSuchBucket") {
    return new ModelSourceError(
      "BERTH_MODEL_SOURCE_NOT_FOUND",
      `${source.uri}: no bucket "${source.bucket}" at ${where(settings)}`,
    );
  }
  if (name === "NoSuchKey" || name === "NotFound" || status === 404) {
    return new ModelSourceError(
      "BERTH_MODEL_SOURCE_NOT_FOUND",
      `${source.uri}: no object "${source.key}" in bucket "${source.bucket}" at ${where(settings)}`,
    );
  }
  if (name === "PreconditionFailed" || status === 412) {
    return new S3ObjectChangedError(source.uri);
  }
  if (
    ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNRESET", "EHOSTUNREACH"].includes(code) ||
    name === "TimeoutError"
  ) {
    return new ModelSourceError(
      "BERTH_MODEL_SOURCE_UNREACHABLE",
      `${source.uri}: cannot reach ${where(settings)} (${code || name})`,
    );
  }
  const label = `${name}${status ? `, HTTP ${status}` : ""}`;
  return new ModelSourceError(
    "BERTH_MODEL_DOWNLOAD_FAILED",
    `${source.uri}: ${where(settings)} failed${label ? ` (${label})` : ""}: ${detail}`,
  );
}

export interface S3PullContext {
  env: NodeJS.ProcessEnv;
  /** The store's models folder (BERTH_HOME/models); S3 objects live under its s3/ folder. */
  cacheDir: string;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
  /** The store's check of a complete file (checkModelFile), before it counts as cached. */
  verify?: (path: string) => Promise<void>;
  /** The cache only: the last copy pulled, or BERTH_MODEL_NOT_CACHED; no request at all. */
  offline?: boolean;
}

export interface S3PullResult {
  path: string;
  sha256?: string;
  sizeBytes: number;
  fromCache: boolean;
  /** The object version pulled: its ETag, unquoted. */
  revision: string;
}

/** What the cache remembers of the last pull of one s3:// URI at one endpoint. */
interface S3CacheRef {
  etag: string;
  sizeBytes: number;
  sha256?: string;
  file: string;
}

/** The cache folder of one object: endpoint, bucket, then the key's last segment and a hash of the whole key. */
export function s3CacheFolder(cacheDir: string, settings: S3Settings, source: S3Source): string {
  const endpointId =
    settings.endpoint === undefined
      ? "aws"
      : new URL(settings.endpoint).host.replace(/[^A-Za-z0-9.-]/g, "_") || "endpoint";
  const keyHash = createHash("sha256").update(source.key).digest("hex").slice(0, 16);
  const name = basename(source.key)
    .replace(/[^A-Za-z0-9._-]/g, "_")
    .replace(/^\.+/, "_")
    .slice(0, 100);
  return join(cacheDir, "s3", endpointId, source.bucket, `${name}-${keyHash}`);
}

function fileNameFor(source: S3Source, etag: string): string {
  const plain = etag.replace(/"/g, "").replace(/[^A-Za-z0-9-]/g, "_");
  const extension = /\.gguf$/i.test(source.key) ? ".gguf" : "";
  return `${plain}${extension}`;
}

async function md5OfFile(path: string): Promise<string> {
  const hash = createHash("md5");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}

/** Whether an SDK failure may pass with a retry (throttling, 5xx, a reset connection). */
function isTransientS3(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const name = (error as { name?: string }).name ?? "";
  const code = (error as { code?: string }).code ?? "";
  return (
    (status !== undefined && (status === 429 || status >= 500)) ||
    ["SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "TimeoutError"].includes(name) ||
    ["ECONNRESET", "EPIPE", "ETIMEDOUT"].includes(code)
  );
}

/**
 * Pulls s3://BUCKET/KEY into the cache: HeadObject for size, ETag and checksum, then the store's
 * download primitive with ranged GETs pinned to that ETag (If-Match), verified against S3's
 * SHA-256 when it holds one, else the ETag's MD5 when it is one, else the size. A cached copy of the
 * same ETag is used without downloading; when the server cannot be reached, the last one pulled is.
 */
export async function pullS3(source: S3Source, context: S3PullContext): Promise<S3PullResult> {
  const connection = await connectS3(context.env);
  try {
    const folder = s3CacheFolder(context.cacheDir, connection.settings, source);
    const refPath = join(folder, "ref.json");
    const lastPulled = async (): Promise<S3PullResult | undefined> => {
      const cached = await readRef(refPath);
      if (!cached || !(await fileExists(join(folder, cached.file)))) return undefined;
      return {
        path: join(folder, cached.file),
        ...(cached.sha256 === undefined ? {} : { sha256: cached.sha256 }),
        sizeBytes: cached.sizeBytes,
        fromCache: true,
        revision: cached.etag.replace(/"/g, ""),
      };
    };
    if (context.offline) {
      const cached = await lastPulled();
      if (cached) return cached;
      throw new ModelSourceError(
        "BERTH_MODEL_NOT_CACHED",
        `${source.uri}: the model is not cached (offline; looked in ${folder})`,
      );
    }
    let info: S3ObjectInfo;
    try {
      info = await headS3Object(connection, source, context.signal);
    } catch (error) {
      // Unreachable (not refused): the last copy pulled serves, as a pinned hub revision would.
      const cached =
        error instanceof ModelSourceError && error.code === "BERTH_MODEL_SOURCE_UNREACHABLE"
          ? await lastPulled()
          : undefined;
      if (!cached) throw error;
      return cached;
    }
    const file = fileNameFor(source, info.etag);
    const target = join(folder, file);
    const verify = async (path: string): Promise<void> => {
      if (info.sha256 === undefined && info.md5 !== undefined) {
        const md5 = await md5OfFile(path);
        if (md5 !== info.md5) {
          throw new ModelSourceError(
            "BERTH_MODEL_INTEGRITY",
            `${source.uri}: MD5 of the bytes received is ${md5}, the object's ETag says ${info.md5}; the partial file was removed`,
          );
        }
      }
      await context.verify?.(path);
    };
    const result = await downloadFile({
      source: source.uri,
      target,
      sizeBytes: info.size,
      ...(info.sha256 === undefined ? {} : { sha256: info.sha256 }),
      verify,
      ...(context.onProgress === undefined ? {} : { onProgress: context.onProgress }),
      ...(context.signal === undefined ? {} : { signal: context.signal }),
      fetchRange: async (offset, signal) => {
        try {
          const range = await getS3Range(connection, source, { start: offset, etag: info.etag, signal });
          return { body: range.body, start: offset, totalBytes: info.size };
        } catch (error) {
          const cause = (error as { cause?: unknown }).cause ?? error;
          if (!(error instanceof S3ObjectChangedError) && isTransientS3(cause)) {
            throw new TransientError(`${source.uri}: ${(error as Error).message}`);
          }
          throw error;
        }
      },
    }).catch(async (error: unknown) => {
      // Another version replaced the object mid-download: its bytes cannot be resumed onto ours.
      if (error instanceof S3ObjectChangedError) await rm(`${target}.incomplete`, { force: true });
      throw error;
    });
    const sha256 = result.sha256 ?? info.sha256;
    const ref: S3CacheRef = {
      etag: info.etag,
      sizeBytes: result.sizeBytes,
      file,
      ...(sha256 === undefined ? {} : { sha256 }),
    };
    await writeFile(`${refPath}.tmp`, JSON.stringify(ref));
    await rename(`${refPath}.tmp`, refPath);
    return {
      path: result.path,
      ...(sha256 === undefined ? {} : { sha256 }),
      sizeBytes: result.sizeBytes,
      fromCache: !result.downloaded,
      revision: info.etag.replace(/"/g, ""),
    };
  } finally {
    connection.close();
  }
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function readRef(path: string): Promise<S3CacheRef | undefined> {
  try {
    const ref = JSON.parse(await readFile(path, "utf8")) as Partial<S3CacheRef>;
    if (typeof ref.etag !== "string" || typeof ref.file !== "string" || typeof ref.sizeBytes !== "number") {
      return undefined;
    }
    return ref as S3CacheRef;
  } catch {
    return undefined;
  }
}
