import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { objectInfoFrom, S3ObjectChangedError, s3Error } from "./s3.js";
import type { S3Settings } from "./s3-config.js";
import type { S3Source } from "./sources.js";

const bytes = Buffer.from("a model");
const sha256Hex = createHash("sha256").update(bytes).digest("hex");
const sha256Base64 = Buffer.from(sha256Hex, "hex").toString("base64");
const md5Hex = createHash("md5").update(bytes).digest("hex");

describe("objectInfoFrom (what a HeadObject says about the whole file)", () => {
  it.each([
    [
      "a full-object SHA-256 and a single-part ETag",
      { ChecksumSHA256: sha256Base64, ETag: `"${md5Hex}"` },
      sha256Hex,
      md5Hex,
    ],
    [
      "FULL_OBJECT said outright",
      { ChecksumSHA256: sha256Base64, ChecksumType: "FULL_OBJECT", ETag: `"${md5Hex}"` },
      sha256Hex,
      md5Hex,
    ],
    [
      "a multipart upload's composite checksum and ETag",
      { ChecksumSHA256: `${sha256Base64}-3`, ETag: `"${md5Hex}-3"` },
      undefined,
      undefined,
    ],
    [
      "COMPOSITE without a part count",
      { ChecksumSHA256: sha256Base64, ChecksumType: "COMPOSITE", ETag: '"opaque-etag"' },
      undefined,
      undefined,
    ],
    ["no checksum at all", { ETag: `"${md5Hex.toUpperCase()}"` }, undefined, md5Hex],
  ])("%s", (_what, head, sha256, md5) => {
    const info = objectInfoFrom({ ContentLength: bytes.length, ...head });
    expect(info.size).toBe(bytes.length);
    expect(info.etag).toBe(head.ETag);
    expect(info.sha256).toBe(sha256);
    expect(info.md5).toBe(md5);
  });
});

describe("s3Error (SDK failures as one line with a stable code)", () => {
  const source: S3Source = { kind: "s3", uri: "s3://models/m.gguf", bucket: "models", key: "m.gguf" };
  const settings: S3Settings = {
    profile: "default",
    region: "us-east-1",
    regionFrom: "the default",
    endpoint: "http://127.0.0.1:9000",
    endpointFrom: "AWS_ENDPOINT_URL",
    forcePathStyle: true,
    credentialsFrom: "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
  };
  const sdk = (name: string, status?: number, code?: string) =>
    Object.assign(new Error(`${name} happened`), {
      name,
      ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
      ...(code === undefined ? {} : { code }),
    });

  it.each([
    [
      sdk("InvalidAccessKeyId", 403),
      "BERTH_MODEL_SOURCE_UNAUTHORIZED",
      "refused the credentials from AWS_ACCESS_KEY_ID",
    ],
    [sdk("SignatureDoesNotMatch", 403), "BERTH_MODEL_SOURCE_UNAUTHORIZED", "(SignatureDoesNotMatch)"],
    [sdk("Unknown", 403), "BERTH_MODEL_SOURCE_UNAUTHORIZED", "(HTTP 403)"],
    [sdk("CredentialsProviderError"), "BERTH_MODEL_SOURCE_UNAUTHORIZED", "no AWS credentials found"],
    [
      sdk("NoSuchBucket", 404),
      "BERTH_MODEL_SOURCE_NOT_FOUND",
      'no bucket "models" at endpoint http://127.0.0.1:9000',
    ],
    [sdk("NotFound", 404), "BERTH_MODEL_SOURCE_NOT_FOUND", 'no object "m.gguf" in bucket "models"'],
    [
      sdk("Error", undefined, "ECONNREFUSED"),
      "BERTH_MODEL_SOURCE_UNREACHABLE",
      "cannot reach endpoint http://127.0.0.1:9000",
    ],
    [sdk("InternalError", 500), "BERTH_MODEL_DOWNLOAD_FAILED", "(InternalError, HTTP 500)"],
  ])("%s → %s", (error, code, words) => {
    const mapped = s3Error(source, settings, error);
    expect(mapped.code).toBe(code);
    expect(mapped.message).toContain("s3://models/m.gguf");
    expect(mapped.message).toContain(words);
    expect(mapped.message).not.toContain("\n");
  });

  it("a failed If-Match (412) is the object changing under a resumed download", () => {
    expect(s3Error(source, settings, sdk("PreconditionFailed", 412))).toBeInstanceOf(S3ObjectChangedError);
  });
});
