// `berth build` end to end: the OCI archive it writes passes skopeo inspect, skopeo copy (which checks
// every digest), umoci unpack and podman load into a fresh store, where it serves /generate as uid
// 10001 and exits 0 on SIGTERM; two cold builds from the same inputs are byte-identical.
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BASE_IMAGE_NAME,
  type BuildJson,
  berthBuild,
  localBaseArchive,
  snapshotProject,
  tempDir,
  tinyModelDir,
} from "./fixtures.js";
import { containerToolsMissing, freePort, Podman, postGenerate, runOk, waitFor } from "./podman.js";

const missing = containerToolsMissing();
if (missing) console.warn(`test/image/berth-build: skipped: ${missing}`);

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

describe.skipIf(missing !== undefined)("berth build", () => {
  let work: string;
  let baseArchive: string;
  let model: { dir: string; file: string };
  let built: BuildJson;
  let archive: string;
  let project: string;

  beforeAll(async () => {
    work = tempDir("build");
    project = snapshotProject();
    baseArchive = await localBaseArchive();
    model = await tinyModelDir();
    archive = join(work, "berth.oci.tar");
    built = await berthBuild(
      [
        "--tag",
        "localhost/berth:test",
        "--base",
        `oci-archive:${baseArchive}`,
        "--model",
        model.file,
        "--oci-archive",
        archive,
      ],
      { BERTH_HOME: join(work, "home-a") },
      project,
    );
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
    if (project) await rm(project, { recursive: true, force: true });
    if (model) await rm(model.dir, { recursive: true, force: true });
  });

  it("two builds from the same inputs with separate caches are byte-identical, and a warm build reuses every layer", async () => {
    const second = join(work, "again.oci.tar");
    const again = await berthBuild(
      [
        "--tag",
        "localhost/berth:test",
        "--base",
        `oci-archive:${baseArchive}`,
        "--model",
        model.file,
        "--oci-archive",
        second,
      ],
      { BERTH_HOME: join(work, "home-b") },
      project,
    );
    expect(again.layers.every((layer) => !layer.cached)).toBe(true);
    expect(again.layers).toEqual(built.layers);
    expect(again.manifestDigest).toBe(built.manifestDigest);
    expect(await sha256File(second)).toBe(await sha256File(archive));

    const warmArchive = join(work, "warm.oci.tar");
    const warm = await berthBuild(
      [
        "--tag",
        "localhost/berth:test",
        "--base",
        `oci-archive:${baseArchive}`,
        "--model",
        model.file,
        "--oci-archive",
        warmArchive,
      ],
      { BERTH_HOME: join(work, "home-a") },
      project,
    );
    expect(warm.layers.map((layer) => layer.cached)).toEqual([true, true, true]);
    expect(await sha256File(warmArchive)).toBe(await sha256File(archive));
  });

  it("writes an archive skopeo inspects with the digest, user, port and labels berth build reported", async () => {
    const inspected = JSON.parse(await runOk("skopeo", ["inspect", `oci-archive:${archive}`])) as {
      Digest: string;
      Layers: string[];
      Labels: Record<string, string>;
    };
    expect(inspected.Digest).toBe(built.manifestDigest);
    expect(inspected.Layers).toHaveLength(built.base.layers + 3);
    expect(inspected.Labels["org.opencontainers.image.title"]).toBe("berth");
    expect(inspected.Labels["org.opencontainers.image.version"]).toMatch(/^\d+\.\d+\.\d+/);
    const config = JSON.parse(
      await runOk("skopeo", ["inspect", "--config", "--raw", `oci-archive:${archive}`]),
    ) as {
      config: {
        User: string;
        ExposedPorts: Record<string, unknown>;
        Entrypoint: string[];
        Healthcheck?: { Test: string[] };
      };
    };
    expect(config.config.User).toBe("10001:10001");
    expect(Object.keys(config.config.ExposedPorts)).toEqual(["9000/tcp"]);
    expect(config.config.Entrypoint.slice(0, 3)).toEqual(["node", "/app/bin/berth.js", "serve"]);
    expect(config.config.Healthcheck?.Test.join(" ")).toContain("/healthz");
  });

  it("survives skopeo copy into an OCI layout (digests re-checked) and umoci unpack, with only the CPU llama.cpp binary", async () => {
    const layout = join(work, "layout");
    await runOk("skopeo", ["copy", "--quiet", `oci-archive:${archive}`, `oci:${layout}:berth`]);
    const bundle = join(work, "bundle");
    await runOk("umoci", ["unpack", "--image", `${layout}:berth`, bundle]);
    const rootfs = join(bundle, "rootfs");
    expect(existsSync(join(rootfs, "app", "dist", "cli", "main.js"))).toBe(true);
    expect(existsSync(join(rootfs, "usr", "local", "bin", "node"))).toBe(true);
    expect(statSync(join(rootfs, "models", "model.gguf")).size).toBe(statSync(model.file).size);
    expect(readdirSync(join(rootfs, "app", "node_modules", "@node-llama-cpp"))).toEqual(["linux-x64"]);
    expect(existsSync(join(rootfs, "app", "node_modules", "typescript"))).toBe(false);
    expect(
      existsSync(join(rootfs, "app", "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle")),
    ).toBe(false);
    expect(statSync(join(rootfs, "home", "berth")).uid).toBe(10001);
    expect(statSync(join(rootfs, "app", "dist", "cli", "main.js")).uid).toBe(0);
  });

  it("loads into a fresh podman store and serves /generate as uid 10001, healthy, exiting 0 on SIGTERM", async () => {
    // --format docker: podman honours HEALTHCHECK only from Docker-format images.
    const dockerArchive = join(work, "berth-docker.oci.tar");
    await berthBuild(
      [
        "--tag",
        "localhost/berth:docker",
        "--format",
        "docker",
        "--base",
        `oci-archive:${baseArchive}`,
        "--model",
        model.file,
        "--oci-archive",
        dockerArchive,
      ],
      { BERTH_HOME: join(work, "home-a") },
      project,
    );
    const podman = new Podman(join(work, "podman"));
    try {
      expect(await podman.ok(["load", "--quiet", "--input", archive])).toContain("localhost/berth:test");
      expect(await podman.ok(["load", "--quiet", "--input", dockerArchive])).toContain(
        "localhost/berth:docker",
      );
      const images = await podman.ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
      expect(images).not.toContain(BASE_IMAGE_NAME); // the store started empty: every layer came from the archive

      const port = await freePort();
      const container = "berth-build-test";
      await podman.ok([
        "run",
        "--detach",
        "--name",
        container,
        "--publish",
        `127.0.0.1:${port}:9000`,
        "--memory",
        "1g",
        "--cpus",
        "1",
        "localhost/berth:docker",
      ]);
      await waitFor(
        "the container's /readyz",
        async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined),
        180_000,
      );
      const answer = await postGenerate(port, "Hello world");
      expect(answer.status).toBe(200);
      expect((answer.body as { generated_text: string }).generated_text.startsWith("Hello world")).toBe(true);

      const uids = await podman.ok([
        "exec",
        container,
        "node",
        "-e",
        "const fs=require('fs');console.log(fs.readdirSync('/proc').filter(p=>/^\\d+$/.test(p)).map(p=>{try{return /Uid:\\s+(\\d+)/.exec(fs.readFileSync('/proc/'+p+'/status','utf8'))[1]}catch{return ''}}).filter(Boolean).join(' '))",
      ]);
      expect(uids.trim().split(" ").length).toBeGreaterThan(0);
      expect(new Set(uids.trim().split(" "))).toEqual(new Set(["10001"]));

      const health = await podman.run(["healthcheck", "run", container]);
      expect(health.code, health.stderr).toBe(0);

      await podman.ok(["stop", "--time", "60", container], 120_000);
      expect((await podman.ok(["inspect", "--format", "{{.State.ExitCode}}", container])).trim()).toBe("0");
    } finally {
      await podman.destroy();
    }
  });
});
