// A real S3-compatible server for the s3:// tests: s3proxy (installed and cached by
// scripts/s3-test-server.sh) with its filesystem backend in a temp dir, on a free port of 127.0.0.1,
// with one access key. Not a mock of the SDK: Berth's client talks S3 REST + SigV4 to it.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { freePort } from "./net.js";
import { REPO_ROOT } from "./serve-process.js";

export interface S3TestServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A bucket created at start. */
  bucket: string;
  /** A client with the right keys, to upload fixtures. */
  client: S3Client;
  put(key: string, body: Uint8Array): Promise<{ etag: string }>;
  /** What the server printed (for failure messages). */
  output(): string;
  close(): Promise<void>;
}

/** The cached s3proxy jar (installs it on first use; cached under ~/.cache/berth, not the test home). */
export function s3ServerJar(): string {
  const env = { ...process.env };
  delete env.BERTH_HOME;
  return execFileSync("bash", [join(REPO_ROOT, "scripts", "s3-test-server.sh")], {
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    timeout: 600_000,
  }).trim();
}

export async function startS3Server(
  options: { bucket?: string; readyTimeoutMs?: number } = {},
): Promise<S3TestServer> {
  const jar = s3ServerJar();
  const dir = mkdtempSync(join(tmpdir(), "berth-s3-"));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKeyId = "berth-test-key";
  const secretAccessKey = "berth-test-secret-0123456789";
  const bucket = options.bucket ?? "models";
  const properties = join(dir, "s3proxy.conf");
  writeFileSync(
    properties,
    [
      `s3proxy.endpoint=${endpoint}`,
      "s3proxy.authorization=aws-v2-or-v4",
      `s3proxy.identity=${accessKeyId}`,
      `s3proxy.credential=${secretAccessKey}`,
      "jclouds.provider=filesystem",
      `jclouds.filesystem.basedir=${join(dir, "data")}`,
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn(
    "java",
    ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-jar", jar, "--properties", properties],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (data: string) => {
    output += data;
  });
  child.stderr?.setEncoding("utf8").on("data", (data: string) => {
    output += data;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  // Ready once it answers HTTP at all (403 to an unsigned request); bounded by a deadline.
  const deadline = Date.now() + (options.readyTimeoutMs ?? 150_000);
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`s3proxy exited with ${child.exitCode} before it listened:\n${output}`);
    }
    try {
      await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2000) });
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`s3proxy did not listen on ${endpoint} in time:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const client = new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));

  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    bucket,
    client,
    async put(key, body) {
      const result = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      return { etag: result.ETag ?? "" };
    },
    output: () => output,
    async close() {
      client.destroy();
      await stop();
    },
  };
}
