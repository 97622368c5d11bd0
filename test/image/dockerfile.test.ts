// The Dockerfile, built by podman on the local Node base (no registry is reachable in CI) and run with
// port mapping, --memory 1g --cpus 1 and the tiny model mounted: POST /generate works, no process runs
// as root, the node HEALTHCHECK passes, SIGTERM (podman stop) drains and exits 0. Reports the size.
import { spawnSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BASE_IMAGE_NAME, localBaseArchive, REPO_ROOT, tempDir, tinyModelDir } from "./fixtures.js";
import { containerToolsMissing, freePort, Podman, postGenerate, waitFor } from "./podman.js";

const missing = containerToolsMissing();
if (missing) console.warn(`test/image/dockerfile: skipped: ${missing}`);

const IMAGE = "localhost/berth:dockerfile";
// The build context; BERTH_TEST_DOCKER_CONTEXT lets a developer point at a clean export of a commit.
const CONTEXT = process.env.BERTH_TEST_DOCKER_CONTEXT ?? REPO_ROOT;

/** npm's cache on this machine: `npm ci` here filled it, so the build stage installs offline from it. */
function npmCacheDir(): string {
  const found = spawnSync("npm", ["config", "get", "cache"], { encoding: "utf8" });
  if (found.status !== 0) throw new Error(`npm config get cache failed: ${found.stderr}`);
  return found.stdout.trim();
}

describe.skipIf(missing !== undefined)("Dockerfile", () => {
  let work: string;
  let podman: Podman;
  let model: { dir: string; file: string };

  beforeAll(async () => {
    work = tempDir("dockerfile");
    podman = new Podman(join(work, "podman"));
    model = await tinyModelDir();
    await podman.ok(["load", "--quiet", "--input", await localBaseArchive()]);
    await podman.ok(
      [
        "build",
        "--format",
        "docker", // keeps HEALTHCHECK (podman drops it from OCI-format images)
        "--tag",
        IMAGE,
        "--build-arg",
        `BASE_IMAGE=${BASE_IMAGE_NAME}`,
        "--build-arg",
        "NPM_CONFIG_OFFLINE=true",
        "--build-arg",
        "NPM_CONFIG_CACHE=/npm-cache",
        // An overlay mount: the build reads the host's cache, its writes are thrown away.
        "--volume",
        `${npmCacheDir()}:/npm-cache:O`,
        "--file",
        join(CONTEXT, "Dockerfile"),
        CONTEXT,
      ],
      1_200_000,
    );
  });

  afterAll(async () => {
    await podman?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
    if (model) await rm(model.dir, { recursive: true, force: true });
  });

  it("carries only the CPU llama.cpp binary and no dev packages; reports its size", async () => {
    const listing = await podman.ok([
      "run",
      "--rm",
      "--entrypoint",
      "node",
      IMAGE,
      "-e",
      "const fs=require('fs');console.log(JSON.stringify({llama:fs.readdirSync('/app/node_modules/@node-llama-cpp'),typescript:fs.existsSync('/app/node_modules/typescript'),vitest:fs.existsSync('/app/node_modules/vitest')}))",
    ]);
    expect(JSON.parse(listing.trim().split("\n").at(-1) as string)).toEqual({
      llama: ["linux-x64"],
      typescript: false,
      vitest: false,
    });
    const size = Number((await podman.ok(["image", "inspect", "--format", "{{.Size}}", IMAGE])).trim());
    const baseSize = Number(
      (await podman.ok(["image", "inspect", "--format", "{{.Size}}", BASE_IMAGE_NAME])).trim(),
    );
    console.log(
      `test/image/dockerfile: image ${IMAGE} is ${(size / 1e6).toFixed(1)} MB unpacked ` +
        `(base ${(baseSize / 1e6).toFixed(1)} MB, Berth's layers ${((size - baseSize) / 1e6).toFixed(1)} MB)`,
    );
    expect(size).toBeGreaterThan(baseSize);
  });

  it("serves /generate as a non-root user with limits, passes its HEALTHCHECK and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const container = "berth-dockerfile-test";
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
      "--volume",
      `${model.dir}:/models:ro`,
      IMAGE,
    ]);
    await waitFor(
      "the container's /readyz",
      async () => {
        const state = (await podman.ok(["inspect", "--format", "{{.State.Status}}", container])).trim();
        if (state === "exited")
          throw new Error(
            `the container exited: ${(await podman.run(["logs", container])).stderr.slice(-2000)}`,
          );
        return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined;
      },
      180_000,
    );

    const answer = await postGenerate(port, "Hello world");
    expect(answer.status).toBe(200);
    expect((answer.body as { generated_text: string }).generated_text.startsWith("Hello world")).toBe(true);

    const limits = await podman.ok([
      "inspect",
      "--format",
      "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
      container,
    ]);
    expect(limits.trim()).toBe(`${1024 ** 3} 1000000000`);
    const uids = await podman.ok([
      "exec",
      container,
      "node",
      "-e",
      "const fs=require('fs');console.log(fs.readdirSync('/proc').filter(p=>/^\\d+$/.test(p)).map(p=>{try{return /Uid:\\s+(\\d+)/.exec(fs.readFileSync('/proc/'+p+'/status','utf8'))[1]}catch{return ''}}).filter(Boolean).join(' '))",
    ]);
    expect(new Set(uids.trim().split(" "))).toEqual(new Set(["10001"]));

    const health = await podman.run(["healthcheck", "run", container]);
    expect(health.code, health.stderr).toBe(0);

    await podman.ok(["stop", "--time", "60", container], 120_000);
    expect((await podman.ok(["inspect", "--format", "{{.State.ExitCode}}", container])).trim()).toBe("0");
  });
});
