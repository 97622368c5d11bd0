// A small Hugging Face hub-compatible HTTP server for tests: serves a folder ROOT/ORG/REPO/** the
// way the hub does (revision API with ?blobs=true, resolve URLs that redirect LFS files to a
// storage path, ETag / X-Repo-Commit / X-Linked-Etag / X-Linked-Size, Range, 401 for private
// repos without a token), plus injected faults. Python's huggingface_hub downloads from it.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join, relative, sep } from "node:path";

/** Faults the server injects, each for `times` matching requests (default: every one). */
export type HubFault =
  /** Storage GETs of `file` send the headers of the whole answer, then close at `atByte` of the file. */
  | { kind: "cut"; file: string; atByte: number; times?: number }
  /** Storage GETs of `file` send its bytes with one flipped: the advertised sha256 no longer matches. */
  | { kind: "corrupt"; file: string; times?: number }
  /** Requests whose path contains `match` answer `status` with Retry-After (seconds). */
  | { kind: "status"; status: 429 | 503; retryAfter?: number; match?: string; times?: number }
  /** Resolve URLs of `file` redirect in a circle. */
  | { kind: "redirect-loop"; file: string; times?: number }
  /** Storage GETs of `file` answer 200 with an HTML error page. */
  | { kind: "html"; file: string; times?: number }
  /** Storage GETs of `file` send at most `bytesPerSecond` (to make two downloads overlap). */
  | { kind: "slow"; file: string; bytesPerSecond: number; times?: number };

export interface HubServerOptions {
  /** ROOT/ORG/REPO/... : each repo is a folder; its files are the repo's files at "main". */
  root: string;
  /** Repos ("org/repo") that need `Authorization: Bearer <token>` with one of `tokens`. */
  privateRepos?: string[];
  tokens?: string[];
  /**
   * Serve /__control/faults (PUT a JSON HubFault[]) and /__control/requests (GET the log; DELETE
   * clears it), for a server in another process (bench:pull). Off by default.
   */
  control?: boolean;
}

export interface HubRequestRecord {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  status: number;
  /** Body bytes written (storage answers). */
  bytesSent: number;
}

interface RepoFile {
  path: string;
  onDisk: string;
  size: number;
  /** git blob sha1 (what the hub reports as blobId / ETag for small files). */
  gitSha1: string;
  sha256: string;
  lfs: boolean;
}

interface Repo {
  id: string;
  commit: string;
  files: RepoFile[];
}

export interface HubServer {
  url: string;
  requests: HubRequestRecord[];
  /** Replaces the active faults. */
  setFaults(faults: HubFault[]): void;
  /** Forgets scanned repos (after changing files under root). */
  rescan(): void;
  repo(id: string): Promise<{ commit: string; files: Array<{ path: string; sha256: string; size: number }> }>;
  close(): Promise<void>;
}

const LFS_EXTENSIONS = [".gguf", ".safetensors", ".bin", ".pt"];
// Hashes of big files survive rescans: keyed by path, size and mtime.
const hashCache = new Map<string, { sha256: string; gitSha1: string }>();

async function hashFile(
  path: string,
  size: number,
  mtimeMs: number,
): Promise<{ sha256: string; gitSha1: string }> {
  const key = `${path}\0${size}\0${mtimeMs}`;
  const cached = hashCache.get(key);
  if (cached) return cached;
  const sha256 = createHash("sha256");
  const sha1 = createHash("sha1").update(`blob ${size}\0`);
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    sha256.update(chunk as Buffer);
    sha1.update(chunk as Buffer);
  }
  const hashes = { sha256: sha256.digest("hex"), gitSha1: sha1.digest("hex") };
  hashCache.set(key, hashes);
  return hashes;
}

async function walk(directory: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const repos = new Map<string, Promise<Repo | undefined>>();
  const requests: HubRequestRecord[] = [];
  let faults: Array<HubFault & { used: number }> = [];
  const privateRepos = new Set(options.privateRepos ?? []);
  const tokens = new Set(options.tokens ?? []);

  const loadRepo = (id: string): Promise<Repo | undefined> => {
    let pending = repos.get(id);
    if (!pending) {
      pending = (async () => {
        const directory = join(options.root, ...id.split("/"));
        try {
          if (!(await stat(directory)).isDirectory()) return undefined;
        } catch {
          return undefined;
        }
        const files: RepoFile[] = [];
        for (const onDisk of (await walk(directory)).sort()) {
          const info = await stat(onDisk);
          const path = relative(directory, onDisk).split(sep).join("/");
          const hashes = await hashFile(onDisk, info.size, info.mtimeMs);
          const lfs = LFS_EXTENSIONS.some((ext) => path.endsWith(ext)) || info.size > 10 * 1024 * 1024;
          files.push({ path, onDisk, size: info.size, lfs, ...hashes });
        }
        const commit = createHash("sha1")
          .update(files.map((file) => `${file.path}\0${file.sha256}\n`).join(""))
          .digest("hex");
        return { id, commit, files };
      })();
      repos.set(id, pending);
    }
    return pending;
  };

  const takeFault = <K extends HubFault["kind"]>(
    kind: K,
    test: (fault: Extract<HubFault, { kind: K }>) => boolean,
  ): Extract<HubFault, { kind: K }> | undefined => {
    for (const fault of faults) {
      if (fault.kind !== kind) continue;
      if (fault.times !== undefined && fault.used >= fault.times) continue;
      if (!test(fault as unknown as Extract<HubFault, { kind: K }>)) continue;
      fault.used++;
      return fault as unknown as Extract<HubFault, { kind: K }>;
    }
    return undefined;
  };

  const authorized = (repo: string, request: IncomingMessage): boolean => {
    if (!privateRepos.has(repo)) return true;
    const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1];
    return token !== undefined && tokens.has(token);
  };

  const hubError = (response: ServerResponse, status: number, code: string, message: string): void => {
    response.writeHead(status, {
      "content-type": "application/json",
      "x-error-code": code,
      "x-error-message": message,
    });
    response.end(JSON.stringify({ error: message }));
  };

  const resolveRevision = (repo: Repo, revision: string): string | undefined =>
    revision === "main" || revision === repo.commit ? repo.commit : undefined;

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://hub");
    const record: HubRequestRecord = {
      method: request.method ?? "GET",
      path: url.pathname,
      status: 0,
      bytesSent: 0,
    };
    if (request.headers.range) record.range = request.headers.range;
    if (request.headers.authorization) record.authorization = request.headers.authorization;
    requests.push(record);
    response.on("finish", () => {
      record.status = response.statusCode;
    });
    response.on("close", () => {
      record.status ||= response.statusCode;
    });
    handle(request, response, url, record).catch((error: unknown) => {
      if (!response.headersSent) hubError(response, 500, "Internal", String(error));
      else response.destroy();
    });
  });

  async function handle(
    request: IncomingMessage,
    response: ServerResponse,
    url: URL,
    record: HubRequestRecord,
  ): Promise<void> {
    const path = decodeURIComponent(url.pathname);
    if (options.control && path.startsWith("/__control/")) {
      requests.pop();
      await control(request, response, path);
      return;
    }
    const statusFault = takeFault(
      "status",
      (fault) => fault.match === undefined || path.includes(fault.match),
    );
    if (statusFault) {
      response.writeHead(statusFault.status, {
        "retry-after": String(statusFault.retryAfter ?? 1),
        "content-type": "text/plain",
      });
      response.end(statusFault.status === 429 ? "Too Many Requests" : "Service Unavailable");
      return;
    }

    // Repo info: /api/models/ORG/REPO[/revision/REV]
    const api = /^\/api\/models\/([^/]+\/[^/]+?)(?:\/revision\/(.+))?$/.exec(path);
    if (api?.[1]) {
      const id = api[1];
      const repo = await loadRepo(id);
      if (!repo) {
        hubError(response, 404, "RepoNotFound", "Repository not found");
        return;
      }
      if (!authorized(id, request)) {
        hubError(response, 401, "RepoNotFound", "Invalid username or password.");
        return;
      }
      const revision = api[2] ?? "main";
      const commit = resolveRevision(repo, revision);
      if (!commit) {
        hubError(response, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
        return;
      }
      const blobs = /^(1|true)$/i.test(url.searchParams.get("blobs") ?? "");
      const body = {
        _id: createHash("sha1").update(id).digest("hex").slice(0, 24),
        id,
        modelId: id,
        author: id.split("/")[0],
        sha: commit,
        private: privateRepos.has(id),
        disabled: false,
        gated: false,
        downloads: 0,
        likes: 0,
        tags: ["gguf"],
        library_name: "gguf",
        lastModified: "2026-01-01T00:00:00.000Z",
        createdAt: "2026-01-01T00:00:00.000Z",
        siblings: repo.files.map((file) =>
          blobs
            ? {
                rfilename: file.path,
                size: file.size,
                blobId: file.gitSha1,
                ...(file.lfs ? { lfs: { sha256: file.sha256, size: file.size, pointerSize: 134 } } : {}),
              }
            : { rfilename: file.path },
        ),
      };
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
      return;
    }

    // Redirect loop hops: /loop/N/FILE -> /loop/N+1 mod 2/FILE
    const loop = /^\/loop\/(\d)\/(.+)$/.exec(path);
    if (loop) {
      response.writeHead(302, { location: `${base()}/loop/${(Number(loop[1]) + 1) % 2}/${loop[2]}` });
      response.end();
      return;
    }

    // One file: /ORG/REPO/resolve/REV/PATH
    const resolveMatch = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (resolveMatch?.[1] && resolveMatch[2] && resolveMatch[3]) {
      const [, id, revision, filePath] = resolveMatch;
      const repo = await loadRepo(id);
      if (!repo) {
        hubError(response, 404, "RepoNotFound", "Repository not found");
        return;
      }
      if (!authorized(id, request)) {
        hubError(response, 401, "RepoNotFound", "Invalid username or password.");
        return;
      }
      const commit = resolveRevision(repo, revision);
      if (!commit) {
        hubError(response, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
        return;
      }
      const file = repo.files.find((candidate) => candidate.path === filePath);
      if (!file) {
        hubError(response, 404, "EntryNotFound", `${filePath} does not exist on "${revision}"`);
        return;
      }
      if (takeFault("redirect-loop", (fault) => fault.file === file.path)) {
        response.writeHead(302, { location: `${base()}/loop/0/${file.path}` });
        response.end();
        return;
      }
      const common = {
        "x-repo-commit": commit,
        etag: `"${file.gitSha1}"`,
        "accept-ranges": "bytes",
        "access-control-expose-headers": "X-Repo-Commit,X-Linked-Etag,X-Linked-Size,ETag,Content-Range",
      };
      if (file.lfs) {
        // As the hub: a 302 to the storage host with the LFS facts on the redirect itself.
        response.writeHead(302, {
          ...common,
          "x-linked-etag": `"${file.sha256}"`,
          "x-linked-size": String(file.size),
          location: `${base()}/storage/${id}/${file.sha256}?file=${encodeURIComponent(file.path)}`,
        });
        response.end();
        return;
      }
      await sendFile(request, response, file, common, record);
      return;
    }

    // Storage (the CDN the hub redirects to): /storage/ORG/REPO/SHA256
    const storage = /^\/storage\/([^/]+\/[^/]+)\/([0-9a-f]{64})$/.exec(path);
    if (storage?.[1] && storage[2]) {
      const repo = await loadRepo(storage[1]);
      const file = repo?.files.find((candidate) => candidate.sha256 === storage[2]);
      if (!file) {
        response.writeHead(404, { "content-type": "text/plain" });
        response.end("NoSuchKey");
        return;
      }
      await sendFile(request, response, file, { etag: `"${file.sha256}"`, "accept-ranges": "bytes" }, record);
      return;
    }
    hubError(response, 404, "NotFound", `no route for ${path}`);
  }

  async function control(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    if (path === "/__control/faults" && request.method === "PUT") {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      faults = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as HubFault[]).map((f) => ({
        ...f,
        used: 0,
      }));
      response.writeHead(204).end();
      return;
    }
    if (path === "/__control/requests") {
      if (request.method === "DELETE") {
        requests.length = 0;
        response.writeHead(204).end();
        return;
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(requests));
      return;
    }
    hubError(response, 404, "NotFound", `no control route ${path}`);
  }

  async function sendFile(
    request: IncomingMessage,
    response: ServerResponse,
    file: RepoFile,
    headers: Record<string, string>,
    record: HubRequestRecord,
  ): Promise<void> {
    const isGet = request.method !== "HEAD";
    if (isGet && takeFault("html", (fault) => fault.file === file.path)) {
      const page =
        "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><p>The proxy could not reach the storage backend.</p></body></html>";
      response.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "content-length": Buffer.byteLength(page),
      });
      response.end(page);
      record.bytesSent += Buffer.byteLength(page);
      return;
    }
    let start = 0;
    let end = file.size - 1;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(request.headers.range ?? "");
    if (range && (range[1] !== "" || range[2] !== "")) {
      if (range[1] === "") {
        start = Math.max(0, file.size - Number(range[2]));
      } else {
        start = Number(range[1]);
        if (range[2] !== "") end = Math.min(end, Number(range[2]));
      }
      if (start >= file.size || start > end) {
        response.writeHead(416, { ...headers, "content-range": `bytes */${file.size}` });
        response.end();
        return;
      }
      status = 206;
    }
    const length = end - start + 1;
    response.writeHead(status, {
      ...headers,
      "content-type": "application/octet-stream",
      "content-length": String(length),
      ...(status === 206 ? { "content-range": `bytes ${start}-${end}/${file.size}` } : {}),
    });
    if (!isGet || length === 0) {
      response.end();
      return;
    }
    const cut = takeFault(
      "cut",
      (fault) => fault.file === file.path && fault.atByte > start && fault.atByte <= end,
    );
    const corrupt = takeFault("corrupt", (fault) => fault.file === file.path);
    const lastByte = cut ? cut.atByte - 1 : end;
    const slow = takeFault("slow", (fault) => fault.file === file.path);
    const flipAt = start + Math.floor(length / 2);
    const stream = createReadStream(file.onDisk, {
      start,
      end: lastByte,
      highWaterMark: slow ? 64 * 1024 : 1024 * 1024,
    });
    let position = start;
    await new Promise<void>((resolve) => {
      stream.on("data", (chunk) => {
        let data = chunk as Buffer;
        if (corrupt && flipAt >= position && flipAt < position + data.length) {
          data = Buffer.from(data);
          data[flipAt - position] = (data[flipAt - position] ?? 0) ^ 0xff;
        }
        position += data.length;
        record.bytesSent += data.length;
        if (slow) {
          stream.pause();
          setTimeout(() => stream.resume(), (data.length / slow.bytesPerSecond) * 1000);
          response.write(data);
        } else if (!response.write(data)) {
          stream.pause();
          response.once("drain", () => stream.resume());
        }
      });
      stream.on("end", () => {
        if (cut) {
          // Headers promised the whole range: closing now, after the bytes written so far are
          // flushed (so the client really has them), is a cut connection.
          response.socket?.destroySoon();
        } else {
          response.end();
        }
        resolve();
      });
      stream.on("error", () => {
        response.destroy();
        resolve();
      });
      response.on("close", () => {
        stream.destroy();
        resolve();
      });
    });
  }

  let port = 0;
  const base = (): string => `http://127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: base(),
    requests,
    setFaults(next) {
      faults = next.map((fault) => ({ ...fault, used: 0 }));
    },
    rescan() {
      repos.clear();
    },
    async repo(id) {
      const repo = await loadRepo(id);
      if (!repo) throw new Error(`no repo ${id} under ${options.root}`);
      return {
        commit: repo.commit,
        files: repo.files.map(({ path, sha256, size }) => ({ path, sha256, size })),
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The bytes of a file, for tests that compare (small files only). */
export async function sha256Of(path: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(path))
    .digest("hex");
}
