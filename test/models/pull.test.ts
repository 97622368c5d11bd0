// pullModel against the hub-compatible server: the HF cache layout, cache hits with no request,
// offline mode, :QUANT selection, tokens, and every fault the issue lists (the server injects
// them; the client, cache and checks are the real ones).
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ModelSourceError } from "../../src/models/errors.js";
import { pullModel } from "../../src/models/store.js";
import { type HubServer, startHubServer } from "../support/hub-server.js";
import { GGUF_REPO, isolatedEnv, makeHubFolder, PRIVATE_REPO, TOKEN } from "./fixtures.js";

let root: string;
let hub: HubServer;
let scratch: string;
let homes = 0;

beforeAll(async () => {
  root = await makeHubFolder();
  hub = await startHubServer({ root, privateRepos: [PRIVATE_REPO], tokens: [TOKEN] });
  scratch = await mkdtemp(join(tmpdir(), "berth-pull-"));
});

afterAll(async () => {
  await hub?.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

/** A fresh HF_HOME + BERTH_HOME pointing at the test hub. */
function freshEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  homes++;
  return isolatedEnv(join(scratch, `home-${homes}`), { HF_ENDPOINT: hub.url, ...extra });
}

async function pullError(source: string, env: NodeJS.ProcessEnv): Promise<ModelSourceError> {
  try {
    await pullModel(source, { env });
  } catch (error) {
    expect(error).toBeInstanceOf(ModelSourceError);
    return error as ModelSourceError;
  }
  throw new Error(`${source} was pulled, expected an error`);
}

/** Every file under the repo's cache folder: nothing partial, no leftover locks. */
function cacheFiles(env: NodeJS.ProcessEnv, repo: string): string[] {
  const folder = join(env.HF_HOME as string, "hub", `models--${repo.replace("/", "--")}`);
  if (!existsSync(folder)) return [];
  const walk = (dir: string, prefix: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory()
        ? walk(join(dir, entry.name), `${prefix}${entry.name}/`)
        : [`${prefix}${entry.name}`],
    );
  return walk(folder, "");
}

function storageGets(file: string): typeof hub.requests {
  return hub.requests.filter(
    (r) =>
      r.method === "GET" &&
      r.path.startsWith("/storage/") &&
      r.status !== 0 &&
      r.path.length > 0 &&
      file.length > 0,
  );
}

describe("hf:// from the hub-compatible server", () => {
  test("ORG/REPO:Q8_0 lands in the HF cache layout; the second pull and HF_HUB_OFFLINE need no request", async () => {
    const env = freshEnv();
    const repo = await hub.repo(GGUF_REPO);
    const q8 = repo.files.find((file) => file.path === "tiny-gpt2-Q8_0.gguf");
    if (!q8) throw new Error("fixture");
    const progress: number[] = [];
    const pulled = await pullModel(`hf://${GGUF_REPO}:Q8_0`, {
      env,
      onProgress: (p) => {
        if (p.phase === "download") progress.push(p.receivedBytes);
      },
    });
    const storage = join(env.HF_HOME as string, "hub", "models--berth-test--tiny-gpt2-GGUF");
    expect(pulled).toMatchObject({
      kind: "hf",
      revision: repo.commit,
      file: "tiny-gpt2-Q8_0.gguf",
      sha256: q8.sha256,
      sizeBytes: q8.size,
      fromCache: false,
      path: join(storage, "snapshots", repo.commit, "tiny-gpt2-Q8_0.gguf"),
    });
    expect(readlinkSync(pulled.path)).toBe(join("..", "..", "blobs", q8.sha256));
    expect(readFileSync(join(storage, "refs", "main"), "utf8")).toBe(repo.commit);
    expect(progress.at(-1)).toBe(q8.size);
    expect(cacheFiles(env, GGUF_REPO).sort()).toEqual([
      `blobs/${q8.sha256}`,
      "refs/main",
      `snapshots/${repo.commit}/tiny-gpt2-Q8_0.gguf`,
    ]);

    const before = hub.requests.length;
    const again = await pullModel(`hf://${GGUF_REPO}:Q8_0`, { env });
    expect(again).toMatchObject({ path: pulled.path, revision: repo.commit, fromCache: true });
    const offline = await pullModel(`hf://${GGUF_REPO}/tiny-gpt2-Q8_0.gguf`, {
      env: { ...env, HF_HUB_OFFLINE: "1", HF_ENDPOINT: "http://127.0.0.1:9" },
    });
    expect(offline.path).toBe(pulled.path);
    const pinned = await pullModel(`hf://${GGUF_REPO}:q8_0@${repo.commit}`, {
      env: { ...env, HF_ENDPOINT: "http://127.0.0.1:9" },
    });
    expect(pinned.path).toBe(pulled.path);
    expect(hub.requests.length).toBe(before);
  });

  test("offline and not cached: one line naming the cache; unreachable: naming the host", async () => {
    const offline = await pullError(`hf://${GGUF_REPO}:Q8_0`, freshEnv({ HF_HUB_OFFLINE: "1" }));
    expect(offline.code).toBe("BERTH_MODEL_NOT_CACHED");
    expect(offline.message).toMatch(/not cached in .*HF_HUB_OFFLINE/);
    const unreachable = await pullError(
      `hf://${GGUF_REPO}:Q8_0`,
      freshEnv({ HF_ENDPOINT: "http://127.0.0.1:9" }),
    );
    expect(unreachable.code).toBe("BERTH_MODEL_SOURCE_UNREACHABLE");
    expect(unreachable.message).toMatch(
      /cannot reach 127\.0\.0\.1:9 \(ECONNREFUSED\); the model is not cached/,
    );
    expect(unreachable.message).not.toMatch(/\n/);
  });

  test(":QUANT missing or absent lists the choices", async () => {
    const ambiguous = await pullError(`hf://${GGUF_REPO}`, freshEnv());
    expect(ambiguous.code).toBe("BERTH_MODEL_SOURCE_AMBIGUOUS");
    expect(ambiguous.message).toMatch(/choices: :F16, :Q8_0/);
    const missing = await pullError(`hf://${GGUF_REPO}:Q4_K_M`, freshEnv());
    expect(missing.code).toBe("BERTH_MODEL_SOURCE_NOT_FOUND");
    expect(missing.message).toMatch(/no GGUF file of quantization Q4_K_M \(choices: :F16, :Q8_0\)/);
  });

  test("404 repo, 404 file, 401 without a token; HF_TOKEN and the token file work", async () => {
    const noRepo = await pullError("hf://berth-test/nothing-here:Q8_0", freshEnv());
    expect(noRepo.code).toBe("BERTH_MODEL_SOURCE_NOT_FOUND");
    const noFile = await pullError(`hf://${GGUF_REPO}/nope-Q2_K.gguf`, freshEnv());
    expect(noFile.code).toBe("BERTH_MODEL_SOURCE_NOT_FOUND");
    expect(noFile.message).toMatch(/GGUF files: tiny-gpt2-F16.gguf, tiny-gpt2-Q8_0.gguf/);
    const denied = await pullError(`hf://${PRIVATE_REPO}:Q8_0`, freshEnv());
    expect(denied.code).toBe("BERTH_MODEL_SOURCE_UNAUTHORIZED");
    expect(denied.message).toMatch(/answered 401 .*set HF_TOKEN/);
    const wrong = await pullError(`hf://${PRIVATE_REPO}:Q8_0`, freshEnv({ HF_TOKEN: "hf_wrong" }));
    expect(wrong.code).toBe("BERTH_MODEL_SOURCE_UNAUTHORIZED");

    const withEnv = await pullModel(`hf://${PRIVATE_REPO}:Q8_0`, { env: freshEnv({ HF_TOKEN: TOKEN }) });
    expect(withEnv.fromCache).toBe(false);
    const env = freshEnv();
    await writeFile(join(env.HF_HOME as string, "token"), `${TOKEN}\n`).catch(async () => {
      const { mkdir } = await import("node:fs/promises");
      await mkdir(env.HF_HOME as string, { recursive: true });
      await writeFile(join(env.HF_HOME as string, "token"), `${TOKEN}\n`);
    });
    const withFile = await pullModel(`hf://${PRIVATE_REPO}:Q8_0`, { env });
    expect(withFile.sha256).toBe(withEnv.sha256);
    // The token never went to a URL outside the hub's origin (here all one origin) and was sent.
    expect(
      hub.requests.some((r) => r.path.includes("private-GGUF") && r.authorization === `Bearer ${TOKEN}`),
    ).toBe(true);
  });

  test("a connection cut mid-file resumes with a range request: same sha256, no byte sent twice", async () => {
    const env = freshEnv();
    const file = (await hub.repo(GGUF_REPO)).files.find((f) => f.path === "tiny-gpt2-F16.gguf");
    if (!file) throw new Error("fixture");
    const cutAt = Math.floor(file.size / 2);
    hub.setFaults([{ kind: "cut", file: file.path, atByte: cutAt, times: 1 }]);
    const first = hub.requests.length;
    const pulled = await pullModel(`hf://${GGUF_REPO}:F16`, { env });
    hub.setFaults([]);
    expect(pulled.sha256).toBe(file.sha256);
    const gets = hub.requests.slice(first).filter((r) => r.method === "GET" && r.path.includes(file.sha256));
    const ranges = gets.map((r) => r.range);
    expect(ranges).toContain(`bytes=${cutAt}-`);
    // bytes=0-0 is the client's size probe; the rest is the file once.
    const sent = gets.reduce((sum, r) => sum + r.bytesSent, 0);
    expect(sent - 1).toBe(file.size);
    expect(cacheFiles(env, GGUF_REPO).filter((f) => f.startsWith("blobs/"))).toEqual([
      `blobs/${file.sha256}`,
    ]);
  });

  test("a crash mid-download leaves only .incomplete, which the next pull resumes from its size", async () => {
    const env = freshEnv();
    const file = (await hub.repo(GGUF_REPO)).files.find((f) => f.path === "tiny-gpt2-Q8_0.gguf");
    if (!file) throw new Error("fixture");
    const blobs = join(env.HF_HOME as string, "hub", "models--berth-test--tiny-gpt2-GGUF", "blobs");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(blobs, { recursive: true });
    const bytes = await readFile(join(root, ...GGUF_REPO.split("/"), file.path));
    const kept = 1_000_000;
    await writeFile(join(blobs, `${file.sha256}.incomplete`), bytes.subarray(0, kept));
    const first = hub.requests.length;
    const pulled = await pullModel(`hf://${GGUF_REPO}:Q8_0`, { env });
    expect(pulled.sha256).toBe(file.sha256);
    const gets = hub.requests.slice(first).filter((r) => r.method === "GET" && r.path.includes(file.sha256));
    expect(gets.map((r) => r.range)).toContain(`bytes=${kept}-`);
    expect(gets.reduce((sum, r) => sum + r.bytesSent, 0) - 1).toBe(file.size - kept);
  });

  test("wrong bytes (sha256 mismatch) are refused and nothing stays in the cache", async () => {
    const env = freshEnv();
    hub.setFaults([{ kind: "corrupt", file: "tiny-gpt2-Q8_0.gguf" }]);
    const error = await pullError(`hf://${GGUF_REPO}:Q8_0`, env);
    hub.setFaults([]);
    expect(error.code).toBe("BERTH_MODEL_INTEGRITY");
    expect(error.message).toMatch(/sha256 of the \d+ bytes received is [0-9a-f]{64}, expected [0-9a-f]{64}/);
    expect(cacheFiles(env, GGUF_REPO).filter((f) => !f.startsWith("refs/"))).toEqual([]);
  });

  test("an HTML page instead of the file is refused saying what arrived", async () => {
    const env = freshEnv();
    hub.setFaults([{ kind: "html", file: "tiny-gpt2-Q8_0.gguf" }]);
    const error = await pullError(`hf://${GGUF_REPO}:Q8_0`, env);
    hub.setFaults([]);
    expect(["BERTH_MODEL_INTEGRITY", "BERTH_MODEL_DOWNLOAD_FAILED"]).toContain(error.code);
    expect(error.message).toMatch(/text\/html|HTML page/);
    expect(cacheFiles(env, GGUF_REPO).filter((f) => !f.startsWith("refs/"))).toEqual([]);
  });

  test("429 and 503 with Retry-After are retried; a server that never recovers is given up on, bounded", async () => {
    const env = freshEnv();
    hub.setFaults([
      { kind: "status", status: 429, retryAfter: 1, match: "/api/models/", times: 1 },
      { kind: "status", status: 503, retryAfter: 0, match: "/storage/", times: 2 },
    ]);
    const first = hub.requests.length;
    const pulled = await pullModel(`hf://${GGUF_REPO}:Q8_0`, { env });
    expect(pulled.fromCache).toBe(false);
    const statuses = hub.requests.slice(first).map((r) => r.status);
    expect(statuses.filter((s) => s === 429)).toHaveLength(1);
    expect(statuses.filter((s) => s === 503)).toHaveLength(2);

    hub.setFaults([{ kind: "status", status: 503, retryAfter: 0, match: "/api/models/" }]);
    const start = hub.requests.length;
    const error = await pullError(`hf://${GGUF_REPO}:F16`, freshEnv());
    hub.setFaults([]);
    expect(error.code).toBe("BERTH_MODEL_SOURCE_UNREACHABLE");
    expect(error.message).toMatch(/gave up after 6 tries: .* answered 503/);
    expect(hub.requests.length - start).toBe(6);
  });

  test("a redirect loop is refused", async () => {
    const env = freshEnv();
    hub.setFaults([{ kind: "redirect-loop", file: "tiny-gpt2-Q8_0.gguf" }]);
    const error = await pullError(`hf://${GGUF_REPO}:Q8_0`, env);
    hub.setFaults([]);
    expect(error.code).toBe("BERTH_MODEL_DOWNLOAD_FAILED");
    expect(error.message).toMatch(/redirect loop/);
  });
});

describe("https:// sources", () => {
  const url = (file: string) => `${hub.url}/${GGUF_REPO}/resolve/main/${file}`;

  test("follows the redirect, verifies #sha256, caches, and resumes after a cut", async () => {
    const env = freshEnv();
    const file = (await hub.repo(GGUF_REPO)).files.find((f) => f.path === "tiny-gpt2-F16.gguf");
    if (!file) throw new Error("fixture");
    hub.setFaults([{ kind: "cut", file: file.path, atByte: 3_000_000, times: 1 }]);
    const first = hub.requests.length;
    const pulled = await pullModel(`${url(file.path)}#sha256=${file.sha256}`, { env });
    hub.setFaults([]);
    expect(pulled).toMatchObject({
      kind: "https",
      sha256: file.sha256,
      sizeBytes: file.size,
      fromCache: false,
    });
    expect(hub.requests.slice(first).map((r) => r.range)).toContain("bytes=3000000-");
    expect(lstatSync(pulled.path).isFile()).toBe(true);
    const before = hub.requests.length;
    expect((await pullModel(`${url(file.path)}#sha256=${file.sha256}`, { env })).fromCache).toBe(true);
    expect(hub.requests.length).toBe(before);
  });

  test("a wrong #sha256 is refused; an HTML page is refused naming its title; nothing is cached", async () => {
    const env = freshEnv();
    const wrong = await pullError(`${url("tiny-gpt2-Q8_0.gguf")}#sha256=${"0".repeat(64)}`, env);
    expect(wrong.code).toBe("BERTH_MODEL_INTEGRITY");
    hub.setFaults([{ kind: "html", file: "tiny-gpt2-Q8_0.gguf" }]);
    const html = await pullError(url("tiny-gpt2-Q8_0.gguf"), env);
    hub.setFaults([]);
    expect(html.code).toBe("BERTH_MODEL_INTEGRITY");
    expect(html.message).toMatch(/an HTML page titled "502 Bad Gateway" \(\d+ bytes\)/);
    const cacheRoot = join(env.BERTH_HOME as string, "models", "https");
    const left = existsSync(cacheRoot)
      ? readdirSync(cacheRoot, { recursive: true }).filter((name) => String(name).includes("."))
      : [];
    expect(left).toEqual([]);
  });

  test("404 names the host and status", async () => {
    const error = await pullError(`${hub.url}/${GGUF_REPO}/resolve/main/absent-Q8_0.gguf`, freshEnv());
    expect(error.code).toBe("BERTH_MODEL_SOURCE_NOT_FOUND");
    expect(error.message).toMatch(/127\.0\.0\.1:\d+ answered 404/);
  });

  test("a truncated model (the server sends less than a whole GGUF) is refused", async () => {
    const env = freshEnv();
    const bytes = await readFile(join(root, ...GGUF_REPO.split("/"), "tiny-gpt2-Q8_0.gguf"));
    const folder = join(root, "berth-test", "truncated");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, "cut-Q8_0.gguf"), bytes.subarray(0, 200_000));
    const error = await pullError(`${hub.url}/berth-test/truncated/resolve/main/cut-Q8_0.gguf`, env);
    expect(error.code).toBe("BERTH_MODEL_INTEGRITY");
    expect(error.message).toMatch(/a GGUF file of 200000 bytes; .*BERTH_MODEL_TRUNCATED/);
  });
});

describe("file:// and tiny://", () => {
  test("relative paths resolve from baseDir; a missing file says where it looked", async () => {
    const pulled = await pullModel("tiny-gpt2-Q8_0.gguf", {
      baseDir: join(root, ...GGUF_REPO.split("/")),
      env: freshEnv(),
    });
    expect(pulled).toMatchObject({ kind: "file", fromCache: true });
    const error = await pullError("file://./absent.gguf", freshEnv());
    expect(error.code).toBe("BERTH_MODEL_SOURCE_NOT_FOUND");
    expect(error.message).toMatch(/no model file at \/.*absent\.gguf/);
    expect((await pullModel("tiny://tiny?dtype=q8_0", { env: freshEnv() })).kind).toBe("tiny");
  });
});

// Keeps the helper referenced for readers who extend the request checks.
void storageGets;
