// s3:// pulls against a real S3-compatible server (s3proxy, started here on 127.0.0.1): credentials
// from the environment and from AWS config files, resume after a cut connection (a relay injects
// the cut), bad credentials and a missing key give clear errors and leave nothing in the cache.
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkModelFile } from "../../src/models/check.js";
import { ModelSourceError } from "../../src/models/errors.js";
import { pullS3 } from "../../src/models/s3.js";
import { parseModelSource, type S3Source } from "../../src/models/sources.js";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { runBerth as berth } from "../support/berth-cli.js";
import { type CuttingRelay, startCuttingRelay } from "../support/cutting-relay.js";
import { type S3TestServer, startS3Server } from "../support/s3-server.js";
import { isolatedEnv } from "./fixtures.js";

const KEY = "gpt2/tiny-q8_0.gguf";

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function s3(uri: string): S3Source {
  const source = parseModelSource(uri);
  if (source.kind !== "s3") throw new Error(`not s3: ${uri}`);
  return source;
}

/** Every file under a folder (relative paths), to show what a failed pull left behind. */
function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1));
  } catch {
    return [];
  }
}

describe("s3:// pulls from a real S3-compatible server", () => {
  let server: S3TestServer;
  let relay: CuttingRelay;
  let model: Buffer;
  let work: string;

  beforeAll(async () => {
    server = await startS3Server();
    relay = await startCuttingRelay(Number(new URL(server.endpoint).port));
    model = readFileSync(await ensureTinyModel({ shape: "tiny", dtype: "q8_0" }));
    await server.put(KEY, model);
    work = mkdtempSync(join(tmpdir(), "berth-s3-test-"));
  });

  afterAll(async () => {
    await relay?.close();
    await server?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A clean environment: nothing from the developer's own AWS setup leaks in. */
  function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    return {
      HOME: join(work, "no-home"),
      AWS_CONFIG_FILE: join(work, "no-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(work, "no-credentials"),
      ...extra,
    };
  }

  function envKeys(endpoint = server.endpoint): NodeJS.ProcessEnv {
    return cleanEnv({
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: "us-east-1",
    });
  }

  it("pulls with keys and endpoint from the environment, verified and whole; the second pull is cached", async () => {
    const cacheDir = join(work, "cache-env");
    const progress: number[] = [];
    const first = await pullS3(s3(`s3://${server.bucket}/${KEY}`), {
      env: envKeys(),
      cacheDir,
      verify: async (path) => void (await checkModelFile(path)),
      onProgress: (p) => progress.push(p.receivedBytes),
    });
    expect(first.fromCache).toBe(false);
    expect(first.sizeBytes).toBe(model.length);
    expect(sha256(readFileSync(first.path))).toBe(sha256(model));
    expect(first.sha256).toBe(sha256(model));
    // s3proxy's ETag of a single-part upload is the MD5, which the pull checked.
    expect(first.revision).toBe(createHash("md5").update(model).digest("hex"));
    expect(progress.at(-1)).toBe(model.length);
    expect(filesUnder(cacheDir).filter((file) => /incomplete|lock/.test(file))).toEqual([]);

    const second = await pullS3(s3(`s3://${server.bucket}/${KEY}`), { env: envKeys(), cacheDir });
    expect(second).toMatchObject({ path: first.path, fromCache: true, sizeBytes: model.length });
  });

  it("an object replaced under the same key is pulled again (the cache is keyed by ETag), never served stale", async () => {
    const cacheDir = join(work, "cache-replaced");
    const key = "gpt2/replaced.gguf";
    await server.put(key, model);
    const before = await pullS3(s3(`s3://${server.bucket}/${key}`), { env: envKeys(), cacheDir });
    const replacement = readFileSync(await ensureTinyModel({ shape: "tiny", dtype: "f16" }));
    await server.put(key, replacement);
    const after = await pullS3(s3(`s3://${server.bucket}/${key}`), { env: envKeys(), cacheDir });
    expect(after.fromCache).toBe(false);
    expect(after.path).not.toBe(before.path);
    expect(sha256(readFileSync(after.path))).toBe(sha256(replacement));
  });

  it("pulls with a profile from AWS config and credentials files (region, endpoint_url, keys)", async () => {
    const configFile = join(work, "aws-config");
    const credentialsFile = join(work, "aws-credentials");
    writeFileSync(
      configFile,
      `[default]\nregion = eu-west-1\n\n[profile berth-test]\nregion = us-east-1\nendpoint_url = ${server.endpoint}\ns3 =\n  addressing_style = path\n`,
    );
    writeFileSync(
      credentialsFile,
      `[default]\naws_access_key_id = not-this-one\naws_secret_access_key = nope\n\n[berth-test]\naws_access_key_id = ${server.accessKeyId}\naws_secret_access_key = ${server.secretAccessKey}\n`,
    );
    const result = await pullS3(s3(`s3://${server.bucket}/${KEY}`), {
      env: {
        HOME: join(work, "no-home"),
        AWS_CONFIG_FILE: configFile,
        AWS_SHARED_CREDENTIALS_FILE: credentialsFile,
        AWS_PROFILE: "berth-test",
      },
      cacheDir: join(work, "cache-files"),
    });
    expect(result.fromCache).toBe(false);
    expect(sha256(readFileSync(result.path))).toBe(sha256(model));
  });

  it("berth model pull s3://… on the command line: a profile from config files; bad keys are one line, exit 1", async () => {
    const configFile = join(work, "cli-aws-config");
    const credentialsFile = join(work, "cli-aws-credentials");
    writeFileSync(configFile, `[profile cli]\nendpoint_url = ${server.endpoint}\n`);
    writeFileSync(
      credentialsFile,
      `[cli]\naws_access_key_id = ${server.accessKeyId}\naws_secret_access_key = ${server.secretAccessKey}\n`,
    );
    const base = isolatedEnv(join(work, "cli-home"), {
      AWS_CONFIG_FILE: configFile,
      AWS_SHARED_CREDENTIALS_FILE: credentialsFile,
      AWS_PROFILE: "cli",
    });
    const ok = await berth(["model", "pull", `s3://${server.bucket}/${KEY}`], base);
    expect(ok.code, ok.stderr).toBe(0);
    expect(sha256(readFileSync(ok.stdout.trim()))).toBe(sha256(model));
    expect(ok.stderr).not.toContain("NodeVersionSupportWarning");

    const bad = await berth(["model", "pull", `s3://${server.bucket}/gpt2/other.gguf`], {
      ...base,
      AWS_PROFILE: "",
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: "wrong",
      AWS_ENDPOINT_URL: server.endpoint,
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(bad.stderr).toContain("BERTH_MODEL_SOURCE_UNAUTHORIZED");
  });

  it("resumes after the connection is cut mid-file: the retry asks only for the bytes not on disk", async () => {
    const cacheDir = join(work, "cache-cut");
    const cutAt = Math.floor(model.length * 0.4);
    relay.requests.length = 0;
    relay.cutNextGet(KEY, cutAt);
    const result = await pullS3(s3(`s3://${server.bucket}/${KEY}`), {
      env: envKeys(relay.url),
      cacheDir,
    });
    expect(sha256(readFileSync(result.path))).toBe(sha256(model));
    const gets = relay.requests.filter((request) => request.method === "GET");
    expect(gets.length).toBe(2);
    expect(gets[0]?.range).toBeUndefined();
    // The cut came after the response headers, so fewer body bytes than cutAt reached the disk.
    const resumedFrom = Number(/^bytes=(\d+)-$/.exec(gets[1]?.range ?? "")?.[1]);
    expect(resumedFrom).toBeGreaterThan(0);
    expect(resumedFrom).toBeLessThanOrEqual(cutAt);
    expect(filesUnder(cacheDir).filter((file) => /incomplete|lock/.test(file))).toEqual([]);
  });

  it("a pull cut short (cancelled) leaves only a partial file, and the next pull resumes it", async () => {
    const cacheDir = join(work, "cache-resume");
    const controller = new AbortController();
    await expect(
      pullS3(s3(`s3://${server.bucket}/${KEY}`), {
        env: envKeys(relay.url),
        cacheDir,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.receivedBytes > model.length / 3) controller.abort(new Error("cancelled by the test"));
        },
      }),
    ).rejects.toThrow();
    const partial = filesUnder(cacheDir).filter((file) => file.endsWith(".incomplete"));
    expect(partial.length).toBe(1);
    expect(filesUnder(cacheDir).filter((file) => file.endsWith(".gguf"))).toEqual([]);

    relay.requests.length = 0;
    const result = await pullS3(s3(`s3://${server.bucket}/${KEY}`), { env: envKeys(relay.url), cacheDir });
    expect(sha256(readFileSync(result.path))).toBe(sha256(model));
    const get = relay.requests.find((request) => request.method === "GET");
    expect(Number(/^bytes=(\d+)-$/.exec(get?.range ?? "")?.[1])).toBeGreaterThan(model.length / 3);
  });

  it("bad credentials: BERTH_MODEL_SOURCE_UNAUTHORIZED naming where the keys came from; nothing cached", async () => {
    const cacheDir = join(work, "cache-bad-keys");
    const error = await pullS3(s3(`s3://${server.bucket}/${KEY}`), {
      env: { ...envKeys(), AWS_SECRET_ACCESS_KEY: "wrong-secret" },
      cacheDir,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelSourceError);
    expect((error as ModelSourceError).code).toBe("BERTH_MODEL_SOURCE_UNAUTHORIZED");
    expect((error as Error).message).toContain(`s3://${server.bucket}/${KEY}`);
    expect((error as Error).message).toContain("AWS_ACCESS_KEY_ID");
    expect((error as Error).message).not.toContain("wrong-secret");
    expect(filesUnder(cacheDir)).toEqual([]);
  });

  it("a missing key: BERTH_MODEL_SOURCE_NOT_FOUND naming the key and the bucket; a missing bucket too", async () => {
    const cacheDir = join(work, "cache-missing");
    const missingKey = await pullS3(s3(`s3://${server.bucket}/gpt2/nope.gguf`), {
      env: envKeys(),
      cacheDir,
    }).catch((caught: unknown) => caught);
    expect((missingKey as ModelSourceError).code).toBe("BERTH_MODEL_SOURCE_NOT_FOUND");
    expect((missingKey as Error).message).toContain('no object "gpt2/nope.gguf" in bucket "models"');

    const missingBucket = await pullS3(s3(`s3://no-such-bucket/${KEY}`), { env: envKeys(), cacheDir }).catch(
      (caught: unknown) => caught,
    );
    expect((missingBucket as ModelSourceError).code).toBe("BERTH_MODEL_SOURCE_NOT_FOUND");
    expect(filesUnder(cacheDir)).toEqual([]);
  });

  it("an unreachable endpoint: the last copy pulled is used; with none, BERTH_MODEL_SOURCE_UNREACHABLE naming it", async () => {
    const cacheDir = join(work, "cache-unreachable");
    const pulled = await pullS3(s3(`s3://${server.bucket}/${KEY}`), { env: envKeys(relay.url), cacheDir });
    await relay.close();
    const offline = await pullS3(s3(`s3://${server.bucket}/${KEY}`), { env: envKeys(relay.url), cacheDir });
    expect(offline).toMatchObject({ path: pulled.path, fromCache: true, revision: pulled.revision });

    // --offline: the cache only, no request at all.
    const offlineFlag = await pullS3(s3(`s3://${server.bucket}/${KEY}`), {
      env: envKeys(relay.url),
      cacheDir,
      offline: true,
    });
    expect(offlineFlag.path).toBe(pulled.path);
    const notCached = await pullS3(s3(`s3://${server.bucket}/${KEY}`), {
      env: envKeys(relay.url),
      cacheDir: join(work, "cache-offline-empty"),
      offline: true,
    }).catch((caught: unknown) => caught);
    expect((notCached as ModelSourceError).code).toBe("BERTH_MODEL_NOT_CACHED");

    const error = await pullS3(s3(`s3://${server.bucket}/${KEY}`), {
      env: envKeys(relay.url),
      cacheDir: join(work, "cache-unreachable-empty"),
    }).catch((caught: unknown) => caught);
    expect((error as ModelSourceError).code).toBe("BERTH_MODEL_SOURCE_UNREACHABLE");
    expect((error as Error).message).toContain(relay.url);
  });
});
