// A client for the OCI distribution API (what Docker Hub, GHCR and Debian's docker-registry speak):
// the Bearer token flow and basic auth, manifests, blob download with digest verification, and blob
// upload (HEAD first, monolithic or chunked) with a count of upload requests for tests and reports.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { request } from "undici";
import type { BlobRef, BlobStore } from "./blob-store.js";
import { openBlob } from "./blob-store.js";
import { asDiskFullError, ImageError } from "./errors.js";
import { MANIFEST_ACCEPT } from "./oci.js";
import { registryApiHost } from "./reference.js";

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryClientOptions {
  /** host[:port] as in the image reference. */
  registry: string;
  /** Plain HTTP instead of HTTPS (a local registry without TLS). */
  insecure: boolean;
  credentials?: RegistryCredentials;
}

/** What a push sent; tests assert that a second push of the same image uploads nothing. */
export interface UploadStats {
  /** POST, PATCH and PUT requests made to upload blobs. */
  blobUploadRequests: number;
  blobsUploaded: number;
  blobsSkipped: number;
  bytesUploaded: number;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string): Challenge {
  const space = header.indexOf(" ");
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const match of header.slice(space + 1).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) {
    params[(match[1] as string).toLowerCase()] = match[2] as string;
  }
  return { scheme, params };
}

type Body = () => Buffer | Readable | null;

interface SendOptions {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH";
  /** Absolute URL or a path under the registry's origin. */
  url: string;
  scope: string;
  headers?: Record<string, string>;
  /** A factory, so the body can be sent again after an authentication round trip. */
  body?: Body;
  /** What is being done, for error messages. */
  doing: string;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer>; dump(): Promise<void> };
}

function header(reply: Reply, name: string): string | undefined {
  const value = reply.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export class RegistryClient {
  readonly stats: UploadStats = {
    blobUploadRequests: 0,
    blobsUploaded: 0,
    blobsSkipped: 0,
    bytesUploaded: 0,
  };
  private readonly origin: string;
  private readonly tokens = new Map<string, string>();
  private useBasic = false;

  constructor(private readonly options: RegistryClientOptions) {
    this.origin = `${options.insecure ? "http" : "https"}://${registryApiHost(options.registry)}`;
  }

  private basicAuth(): string | undefined {
    const credentials = this.options.credentials;
    if (!credentials) return undefined;
    return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
  }

  private authHeader(scope: string): string | undefined {
    const token = this.tokens.get(scope);
    if (token) return `Bearer ${token}`;
    return this.useBasic ? this.basicAuth() : undefined;
  }

  private refused(status: number, doing: string, detail = ""): ImageError {
    const who = this.options.credentials
      ? `the credentials for user "${this.options.credentials.username}"`
      : "anonymous access (no credentials were found)";
    return new ImageError(
      "BERTH_IMAGE_REGISTRY_AUTH",
      `registry ${this.options.registry} refused ${who} while ${doing} (HTTP ${status})${detail}. ` +
        "Set BERTH_REGISTRY_USERNAME and BERTH_REGISTRY_PASSWORD, or log in with `podman login " +
        `${this.options.registry}\` (berth reads its auth.json and ~/.docker/config.json), and check the ` +
        "account may pull and push this repository.",
    );
  }

  private async raw(options: SendOptions, url: URL): Promise<Reply> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    const auth = url.origin === this.origin ? this.authHeader(options.scope) : undefined;
    if (auth) headers.authorization = auth;
    try {
      const reply = await request(url, {
        method: options.method,
        headers,
        body: options.body ? options.body() : null,
        headersTimeout: 120_000,
        bodyTimeout: 300_000,
      });
      return { status: reply.statusCode, headers: reply.headers, body: reply.body as Reply["body"] };
    } catch (error) {
      const hint = this.options.insecure
        ? ""
        : " If the registry speaks plain HTTP (e.g. a local registry), pass --insecure-registry.";
      throw new ImageError(
        "BERTH_IMAGE_REGISTRY",
        `cannot reach registry ${this.options.registry} (${url.origin}) while ${options.doing}: ` +
          `${error instanceof Error ? error.message : String(error)}.${hint}`,
        { cause: error },
      );
    }
  }

  private async fetchToken(challenge: Challenge, scope: string, doing: string): Promise<void> {
    const realm = challenge.params.realm;
    if (!realm)
      throw new ImageError(
        "BERTH_IMAGE_REGISTRY",
        `registry ${this.options.registry} sent a Bearer challenge without a realm`,
      );
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    url.searchParams.set("scope", scope);
    const headers: Record<string, string> = {};
    const basic = this.basicAuth();
    if (basic) headers.authorization = basic;
    let reply: Awaited<ReturnType<typeof request>>;
    try {
      reply = await request(url, { method: "GET", headers, headersTimeout: 60_000, bodyTimeout: 60_000 });
    } catch (error) {
      throw new ImageError(
        "BERTH_IMAGE_REGISTRY",
        `cannot reach the token service ${url.origin} of ${this.options.registry}`,
        {
          cause: error,
        },
      );
    }
    const text = await reply.body.text();
    if (reply.statusCode === 401 || reply.statusCode === 403) throw this.refused(reply.statusCode, doing);
    if (reply.statusCode !== 200) {
      throw new ImageError(
        "BERTH_IMAGE_REGISTRY",
        `token service of ${this.options.registry} answered HTTP ${reply.statusCode}: ${text.slice(0, 200)}`,
      );
    }
    const json = JSON.parse(text) as { token?: string; access_token?: string };
    const token = json.token ?? json.access_token;
    if (!token)
      throw new ImageError(
        "BERTH_IMAGE_REGISTRY",
        `token service of ${this.options.registry} returned no token`,
      );
    this.tokens.set(scope, token);
  }

  /** Sends a request, answering one authentication challenge; 401/403 after that is an auth error. */
  async send(options: SendOptions): Promise<Reply> {
    const url = new URL(options.url, this.origin);
    let reply = await this.raw(options, url);
    if (reply.status === 401 && url.origin === this.origin) {
      const challengeHeader = header(reply, "www-authenticate") ?? "";
      await reply.body.dump();
      const challenge = parseChallenge(challengeHeader);
      if (challenge.scheme === "bearer") {
        await this.fetchToken(challenge, options.scope, options.doing);
      } else if (challenge.scheme === "basic" && this.options.credentials && !this.useBasic) {
        this.useBasic = true;
      } else {
        throw this.refused(401, options.doing);
      }
      reply = await this.raw(options, url);
    }
    if (reply.status === 401 || reply.status === 403) {
      const detail = await registryErrorDetail(reply);
      throw this.refused(reply.status, options.doing, detail);
    }
    return reply;
  }

  private async unexpected(reply: Reply, doing: string): Promise<ImageError> {
    const detail = await registryErrorDetail(reply);
    return new ImageError(
      "BERTH_IMAGE_REGISTRY",
      `registry ${this.options.registry} answered HTTP ${reply.status} while ${doing}${detail}`,
    );
  }

  /** The manifest or index a tag or digest names: bytes, media type, digest. `null` when absent (404). */
  async getManifest(
    repository: string,
    reference: string,
  ): Promise<{ bytes: Buffer; mediaType: string; digest: string } | null> {
    const doing = `reading manifest ${repository}:${reference}`;
    const reply = await this.send({
      method: "GET",
      url: `/v2/${repository}/manifests/${reference}`,
      scope: `repository:${repository}:pull`,
      headers: { accept: MANIFEST_ACCEPT },
      doing,
    });
    if (reply.status === 404) {
      await reply.body.dump();
      return null;
    }
    if (reply.status !== 200) throw await this.unexpected(reply, doing);
    const bytes = Buffer.from(await reply.body.arrayBuffer());
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (reference.startsWith("sha256:") && digest !== reference) {
      throw new ImageError(
        "BERTH_IMAGE_BASE_CORRUPT",
        `registry ${this.options.registry} sent a manifest for ${repository}@${reference} whose bytes hash to ${digest}`,
      );
    }
    const mediaType = (header(reply, "content-type") ?? "").split(";")[0]?.trim() ?? "";
    return { bytes, mediaType, digest };
  }

  /** Downloads a blob into the store, verifying its digest and size; a no-op when the store has it. */
  async pullBlob(
    repository: string,
    digest: string,
    size: number,
    store: BlobStore,
    onBytes?: (bytes: number) => void,
  ): Promise<string> {
    if (await store.has(digest, size)) return store.blobPath(digest);
    const doing = `downloading blob ${digest} of ${repository}`;
    let reply = await this.send({
      method: "GET",
      url: `/v2/${repository}/blobs/${digest}`,
      scope: `repository:${repository}:pull`,
      doing,
    });
    // Registries redirect blob downloads to storage elsewhere; the credentials stay with the registry.
    for (let hops = 0; reply.status >= 300 && reply.status < 400 && hops < 5; hops++) {
      const location = header(reply, "location");
      await reply.body.dump();
      if (!location) break;
      reply = await this.send({
        method: "GET",
        url: location,
        scope: `repository:${repository}:pull`,
        doing,
      });
    }
    if (reply.status === 404) {
      await reply.body.dump();
      throw new ImageError(
        "BERTH_IMAGE_BASE_NOT_FOUND",
        `registry ${this.options.registry} has no blob ${digest} in ${repository}`,
      );
    }
    if (reply.status !== 200) throw await this.unexpected(reply, doing);
    const temp = await store.tempPath();
    const hash = createHash("sha256");
    let received = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        received += chunk.length;
        onBytes?.(received);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(reply.body, measure, createWriteStream(temp));
    } catch (error) {
      await rm(temp, { force: true });
      if (error instanceof ImageError) throw error;
      const diskFull = asDiskFullError(error, `base layer ${digest}`, temp);
      if (diskFull !== error) throw diskFull;
      throw new ImageError(
        "BERTH_IMAGE_REGISTRY",
        `download of ${digest} from ${this.options.registry} failed: ${String(error)}`,
        {
          cause: error,
        },
      );
    }
    const actual = `sha256:${hash.digest("hex")}`;
    if (actual !== digest || received !== size) {
      await rm(temp, { force: true });
      throw new ImageError(
        "BERTH_IMAGE_BASE_CORRUPT",
        `blob ${digest} from ${this.options.registry}/${repository} arrived as ${received} bytes hashing to ${actual} ` +
          `(expected ${size} bytes); the registry or a proxy damaged it, try again`,
      );
    }
    return store.commit(temp, digest);
  }

  /** Whether the registry already has a blob (HEAD). */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const reply = await this.send({
      method: "HEAD",
      url: `/v2/${repository}/blobs/${digest}`,
      scope: `repository:${repository}:pull,push`,
      doing: `checking blob ${digest}`,
    });
    await reply.body.dump();
    return reply.status === 200;
  }

  /**
   * Uploads a blob unless the registry has it: one PUT for blobs up to `chunkSize`, else PATCH chunks
   * of `chunkSize` and a closing PUT. Returns whether it uploaded.
   */
  async pushBlob(
    repository: string,
    blob: BlobRef,
    chunkSize: number,
    onBytes?: (bytes: number) => void,
  ): Promise<boolean> {
    if (await this.hasBlob(repository, blob.digest)) {
      this.stats.blobsSkipped++;
      return false;
    }
    const scope = `repository:${repository}:pull,push`;
    const doing = `uploading blob ${blob.digest} to ${repository}`;
    this.stats.blobUploadRequests++;
    const start = await this.send({
      method: "POST",
      url: `/v2/${repository}/blobs/uploads/`,
      scope,
      doing,
      headers: { "content-length": "0" },
    });
    await start.body.dump();
    if (start.status !== 202) throw await this.unexpected(start, doing);
    let location = header(start, "location");
    if (!location)
      throw new ImageError(
        "BERTH_IMAGE_REGISTRY",
        `registry ${this.options.registry} started an upload without a Location`,
      );

    const withDigest = (where: string): string => {
      const url = new URL(where, this.origin);
      url.searchParams.set("digest", blob.digest);
      return url.toString();
    };
    if (blob.size <= chunkSize) {
      this.stats.blobUploadRequests++;
      const put = await this.send({
        method: "PUT",
        url: withDigest(location),
        scope,
        doing,
        headers: { "content-type": "application/octet-stream", "content-length": String(blob.size) },
        body: () => progressStream(openBlob(blob), onBytes),
      });
      await put.body.dump();
      if (put.status !== 201) throw await this.unexpected(put, doing);
    } else {
      for (let offset = 0; offset < blob.size; offset += chunkSize) {
        const length = Math.min(chunkSize, blob.size - offset);
        this.stats.blobUploadRequests++;
        const chunk: BlobRef = { ...blob, start: blob.start + offset, size: length };
        const patch = await this.send({
          method: "PATCH",
          url: location,
          scope,
          doing,
          headers: {
            "content-type": "application/octet-stream",
            "content-length": String(length),
            "content-range": `${offset}-${offset + length - 1}`,
          },
          body: () =>
            progressStream(openBlob(chunk), onBytes ? (bytes) => onBytes(offset + bytes) : undefined),
        });
        await patch.body.dump();
        if (patch.status !== 202) throw await this.unexpected(patch, doing);
        location = header(patch, "location") ?? location;
      }
      this.stats.blobUploadRequests++;
      const put = await this.send({
        method: "PUT",
        url: withDigest(location),
        scope,
        doing,
        headers: { "content-length": "0" },
      });
      await put.body.dump();
      if (put.status !== 201) throw await this.unexpected(put, doing);
    }
    this.stats.blobsUploaded++;
    this.stats.bytesUploaded += blob.size;
    return true;
  }

  /** PUTs a manifest under a tag; returns the digest the registry reports (or ours). */
  async putManifest(
    repository: string,
    tag: string,
    bytes: Buffer,
    mediaType: string,
    digest: string,
  ): Promise<string> {
    const doing = `pushing manifest ${repository}:${tag}`;
    const reply = await this.send({
      method: "PUT",
      url: `/v2/${repository}/manifests/${tag}`,
      scope: `repository:${repository}:pull,push`,
      doing,
      headers: { "content-type": mediaType, "content-length": String(bytes.length) },
      body: () => bytes,
    });
    await reply.body.dump();
    if (reply.status !== 201 && reply.status !== 200) throw await this.unexpected(reply, doing);
    const reported = header(reply, "docker-content-digest");
    if (reported && reported !== digest) {
      throw new ImageError(
        "BERTH_IMAGE_REGISTRY",
        `registry ${this.options.registry} stored manifest ${repository}:${tag} as ${reported}, not ${digest}`,
      );
    }
    return digest;
  }
}

function progressStream(source: Readable, onBytes?: (bytes: number) => void): Readable {
  if (!onBytes) return source;
  let sent = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      onBytes(sent);
      callback(null, chunk);
    },
  });
  source.on("error", (error) => measure.destroy(error));
  return source.pipe(measure);
}

/** The registry's own explanation from an error body (`{"errors":[{"code","message"}]}`), if any. */
async function registryErrorDetail(reply: Reply): Promise<string> {
  try {
    const text = await reply.body.text();
    const json = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    const first = json.errors?.[0];
    return first ? `: ${first.code ?? ""} ${first.message ?? ""}`.trimEnd() : "";
  } catch {
    return "";
  }
}
