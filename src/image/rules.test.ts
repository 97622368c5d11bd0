// Table tests of the image boundary's pure rules: package selection and pruning, config and manifest
// assembly, platform choice, auth challenges and files, progress steps.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { credentialsFromAuthFile } from "./credentials.js";
import { buildImageConfig, buildManifest, mergeEnv, rfc3339 } from "./image-config.js";
import { MEDIA_TYPES, selectPlatform } from "./oci.js";
import { progressStep } from "./progress.js";
import {
  isPrunableModuleFile,
  packageLockSchema,
  packageNameOfLockPath,
  selectProductionPackages,
} from "./prune.js";
import { parseChallenge } from "./registry.js";

const lock = packageLockSchema.parse({
  lockfileVersion: 3,
  packages: {
    "": { name: "berth" },
    "node_modules/fastify": { version: "5.0.0" },
    "node_modules/typescript": { version: "5.9.3", devOptional: true },
    "node_modules/vitest": { version: "4.1.0", dev: true },
    "node_modules/node-llama-cpp": { version: "3.21.1" },
    "node_modules/@node-llama-cpp/linux-x64": {
      version: "3.21.1",
      optional: true,
      os: ["linux"],
      cpu: ["x64"],
    },
    "node_modules/@node-llama-cpp/linux-x64-cuda": {
      version: "3.21.1",
      optional: true,
      os: ["linux"],
      cpu: ["x64"],
    },
    "node_modules/@node-llama-cpp/mac-arm64-metal": {
      version: "3.21.1",
      optional: true,
      os: ["darwin"],
      cpu: ["arm64"],
    },
    "node_modules/@reflink/reflink-darwin-x64": { version: "0.1.19", optional: true, os: ["darwin"] },
    "node_modules/a/node_modules/@s/b": { version: "1.0.0" },
  },
});

describe("selectProductionPackages", () => {
  it("keeps production packages and only the CPU llama.cpp binary", () => {
    expect(selectProductionPackages(lock, "cpu").map((p) => p.path)).toEqual([
      "node_modules/@node-llama-cpp/linux-x64",
      "node_modules/a/node_modules/@s/b",
      "node_modules/fastify",
      "node_modules/node-llama-cpp",
    ]);
  });

  it("keeps the CUDA binaries and the CPU fallback for the cuda variant", () => {
    const paths = selectProductionPackages(lock, "cuda").map((p) => p.path);
    expect(paths).toContain("node_modules/@node-llama-cpp/linux-x64-cuda");
    expect(paths).toContain("node_modules/@node-llama-cpp/linux-x64");
    expect(paths).not.toContain("node_modules/@node-llama-cpp/mac-arm64-metal");
  });

  it("selects no dev or devOptional package from the real lockfile, and exactly one llama.cpp binary", () => {
    const real = packageLockSchema.parse(JSON.parse(readFileSync("package-lock.json", "utf8")));
    const selected = selectProductionPackages(real, "cpu").map((p) => p.path);
    expect(selected).toContain("node_modules/node-llama-cpp");
    expect(selected).not.toContain("node_modules/typescript");
    expect(selected).not.toContain("node_modules/vitest");
    expect(selected.filter((p) => p.includes("@node-llama-cpp/"))).toEqual([
      "node_modules/@node-llama-cpp/linux-x64",
    ]);
  });

  it("names packages by their last node_modules segment", () => {
    expect(packageNameOfLockPath("node_modules/a/node_modules/@s/b")).toBe("@s/b");
    expect(packageNameOfLockPath("node_modules/fastify")).toBe("fastify");
  });

  it.each([
    ["fastify", "lib/route.js.map", true],
    ["fastify", "types/index.d.ts", true],
    ["fastify", "types/index.d.mts", true],
    ["fastify", "README.md", true],
    ["fastify", "LICENSE.md", false],
    ["fastify", "lib/route.js", false],
    ["fastify", "lib/route.ts", false],
    ["node-llama-cpp", "llama/gitRelease.bundle", true],
    ["other", "llama/gitRelease.bundle", false],
  ])("prunes %s/%s: %s", (name, path, prunable) => {
    expect(isPrunableModuleFile(name, path)).toBe(prunable);
  });
});

describe("image config and manifest", () => {
  const base = {
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/usr/bin", "NODE_VERSION=20"], Cmd: ["node"], Labels: { maintainer: "x" } },
    rootfs: { type: "layers" as const, diff_ids: [`sha256:${"1".repeat(64)}`] },
    history: [{ created_by: "base" }],
  };
  const settings = {
    created: rfc3339(0),
    user: "10001:10001",
    workingDir: "/app",
    entrypoint: ["node", "/app/bin/berth.js", "serve"],
    exposedPort: 9000,
    env: { NODE_ENV: "production", PATH: "/usr/local/bin:/usr/bin" },
    labels: { "org.opencontainers.image.title": "berth" },
    healthcheck: {
      test: ["node", "-e", "x"],
      intervalSeconds: 10,
      timeoutSeconds: 3,
      startPeriodSeconds: 60,
      retries: 3,
    },
  };

  it("puts Berth's settings over the base's, drops the base Cmd and appends diff_ids and history", () => {
    const config = buildImageConfig(
      base,
      [{ diffId: `sha256:${"2".repeat(64)}`, createdBy: "deps" }],
      settings,
    ) as {
      created: string;
      config: Record<string, unknown>;
      rootfs: { diff_ids: string[] };
      history: unknown[];
    };
    expect(config.created).toBe("1970-01-01T00:00:00Z");
    expect(config.config.User).toBe("10001:10001");
    expect(config.config.Cmd).toBeUndefined();
    expect(config.config.Env).toEqual([
      "PATH=/usr/local/bin:/usr/bin",
      "NODE_VERSION=20",
      "NODE_ENV=production",
    ]);
    expect(config.config.ExposedPorts).toEqual({ "9000/tcp": {} });
    expect(config.config.Labels).toEqual({ maintainer: "x", "org.opencontainers.image.title": "berth" });
    expect(config.config.Healthcheck).toEqual({
      Test: ["CMD", "node", "-e", "x"],
      Interval: 10e9,
      Timeout: 3e9,
      StartPeriod: 60e9,
      Retries: 3,
    });
    expect(config.rootfs.diff_ids).toHaveLength(2);
    expect(config.history).toEqual([
      { created_by: "base" },
      { created: "1970-01-01T00:00:00Z", created_by: "deps" },
    ]);
  });

  it("writes annotations only into OCI manifests", () => {
    const descriptor = { mediaType: MEDIA_TYPES.ociConfig, digest: `sha256:${"3".repeat(64)}`, size: 1 };
    expect(buildManifest(MEDIA_TYPES.ociManifest, descriptor, [], { a: "b" }).annotations).toEqual({
      a: "b",
    });
    expect(buildManifest(MEDIA_TYPES.dockerManifest, descriptor, [], { a: "b" }).annotations).toBeUndefined();
  });

  it("merges env by name", () => {
    expect(mergeEnv(["A=1", "B=2"], { B: "3", C: "4" })).toEqual(["A=1", "B=3", "C=4"]);
  });

  it("picks linux/amd64 from an index and explains when there is none", () => {
    const digest = (n: number) => `sha256:${String(n).repeat(64)}`;
    const index = {
      schemaVersion: 2 as const,
      manifests: [
        {
          mediaType: MEDIA_TYPES.ociManifest,
          digest: digest(1),
          size: 1,
          platform: { os: "linux", architecture: "arm64" },
        },
        {
          mediaType: MEDIA_TYPES.ociManifest,
          digest: digest(2),
          size: 1,
          platform: { os: "linux", architecture: "amd64" },
        },
      ],
    };
    expect(selectPlatform(index, "x").digest).toBe(digest(2));
    expect(() => selectPlatform({ ...index, manifests: index.manifests.slice(0, 1) }, "node:20")).toThrow(
      /linux\/arm64/,
    );
  });
});

describe("registry helpers", () => {
  it("parses Bearer and Basic challenges", () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull"',
      ),
    ).toEqual({
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/node:pull",
      },
    });
    expect(parseChallenge('Basic realm="berth-test"').scheme).toBe("basic");
  });

  it("reads credentials from podman/docker auth files, Docker Hub under its legacy key too", () => {
    const auth = (text: string) => ({ auth: Buffer.from(text).toString("base64") });
    const file = {
      auths: { "127.0.0.1:5000": auth("u:p:w"), "https://index.docker.io/v1/": auth("hub:pw") },
    };
    expect(credentialsFromAuthFile(file, "127.0.0.1:5000")).toEqual({ username: "u", password: "p:w" });
    expect(credentialsFromAuthFile(file, "docker.io")).toEqual({ username: "hub", password: "pw" });
    expect(credentialsFromAuthFile(file, "ghcr.io")).toBeUndefined();
    expect(credentialsFromAuthFile("not an object", "ghcr.io")).toBeUndefined();
  });

  it("reports progress in 10% steps", () => {
    expect([0, 9, 10, 55, 99, 100, 150].map((done) => progressStep(done, 100))).toEqual([
      0, 0, 1, 5, 9, 10, 10,
    ]);
    expect(progressStep(5, 0)).toBe(10);
  });
});
