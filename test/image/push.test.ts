// `berth build --push` against a real registry (Debian's docker-registry on 127.0.0.1): skopeo pulls
// back the same digest; a second push uploads no blob (counted by the client and in the registry's
// access log); a registry image works as a base; refused credentials (Basic and Bearer token flows)
// and a missing base give their error codes.
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berth, berthBuild, localBaseArchive, snapshotProject, tempDir } from "./fixtures.js";
import { containerToolsMissing, runOk } from "./podman.js";
import {
  type LocalRegistry,
  type RegistryAuth,
  registryMissing,
  startRegistry,
  TEST_PASSWORD,
  TEST_USER,
} from "./registry.js";

const missing = containerToolsMissing() ?? registryMissing("none");
if (missing) console.warn(`test/image/push: skipped: ${missing}`);

describe.skipIf(missing !== undefined)("berth build --push", () => {
  let work: string;
  let project: string;
  let baseArchive: string;
  let registry: LocalRegistry;
  let home: string;

  beforeAll(async () => {
    work = tempDir("push");
    project = snapshotProject();
    home = join(work, "home");
    baseArchive = await localBaseArchive();
    registry = await startRegistry(join(work, "registry"));
  });

  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    if (project) await rm(project, { recursive: true, force: true });
  });

  it("pushes in chunks, skopeo pulls back the same digest, and a second push uploads no blob", async () => {
    const tag = `${registry.host}/berth:test`;
    const pushArgs = ["--tag", tag, "--base", `oci-archive:${baseArchive}`, "--push", "--insecure-registry"];
    // 4 MB chunks: the dependencies layer (~20 MB) goes up as PATCH requests, the small ones as one PUT.
    const first = await berthBuild([...pushArgs, "--chunk-size", "4000000"], { BERTH_HOME: home }, project);
    const blobs = first.base.layers + first.layers.length + 1; // + the config
    expect(first.push?.digest).toBe(first.manifestDigest);
    expect(first.push?.blobsUploaded).toBe(blobs);
    expect(registry.countRequests("PATCH", /^\/v2\/berth\/blobs\/uploads\/.+/)).toBeGreaterThan(1);

    const inspected = JSON.parse(
      await runOk("skopeo", ["inspect", "--tls-verify=false", `docker://${tag}`]),
    ) as {
      Digest: string;
    };
    expect(inspected.Digest).toBe(first.manifestDigest);
    const pulled = join(work, "pulled");
    await runOk("skopeo", [
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      `docker://${tag}`,
      `oci:${pulled}:berth`,
    ]);
    const index = JSON.parse(readFileSync(join(pulled, "index.json"), "utf8")) as {
      manifests: Array<{ digest: string }>;
    };
    expect(index.manifests[0]?.digest).toBe(first.manifestDigest);

    const uploadsBefore = registry.countRequests("POST", /^\/v2\/berth\/blobs\/uploads\/$/);
    const second = await berthBuild(pushArgs, { BERTH_HOME: home }, project);
    expect(second.manifestDigest).toBe(first.manifestDigest);
    expect(second.push).toMatchObject({
      blobsUploaded: 0,
      blobUploadRequests: 0,
      blobsSkipped: blobs,
      bytesUploaded: 0,
    });
    expect(registry.countRequests("POST", /^\/v2\/berth\/blobs\/uploads\/$/)).toBe(uploadsBefore);
  });

  it("builds on a base pulled from the registry, and names a missing one BERTH_IMAGE_BASE_NOT_FOUND", async () => {
    const tag = `${registry.host}/berth:base`;
    await berthBuild(
      ["--tag", tag, "--base", `oci-archive:${baseArchive}`, "--push", "--insecure-registry"],
      { BERTH_HOME: home },
      project,
    );
    const baseDigest = JSON.parse(
      await runOk("skopeo", ["inspect", "--tls-verify=false", `docker://${tag}`]),
    ) as { Digest: string };
    const archive = join(work, "on-registry-base.oci.tar");
    const built = await berthBuild(
      [
        "--tag",
        `${registry.host}/berth:layered`,
        "--base",
        tag,
        "--insecure-registry",
        "--oci-archive",
        archive,
      ],
      { BERTH_HOME: join(work, "home-fresh") },
      project,
    );
    expect(built.base.manifestDigest).toBe(baseDigest.Digest);
    expect(built.base.layers).toBe(3);
    const inspected = JSON.parse(await runOk("skopeo", ["inspect", `oci-archive:${archive}`])) as {
      Layers: string[];
    };
    expect(inspected.Layers).toHaveLength(5);

    const absent = await berth(
      [
        "build",
        "--project",
        project,
        "--tag",
        "x/y:z",
        "--base",
        `${registry.host}/does-not-exist:1`,
        "--insecure-registry",
      ],
      { BERTH_HOME: home },
    );
    expect(absent.code).toBe(1);
    expect(absent.stderr).toContain("BERTH_IMAGE_BASE_NOT_FOUND");
    expect(absent.stderr).toContain("does-not-exist:1");
  });
});

describe.each(["htpasswd", "token"] as RegistryAuth[])("a registry with %s auth", (auth) => {
  const unavailable = missing ?? registryMissing(auth);
  if (unavailable && !missing) console.warn(`test/image/push (${auth}): skipped: ${unavailable}`);
  let work: string;
  let project: string;
  let registry: LocalRegistry;

  beforeAll(async () => {
    if (unavailable) return;
    work = tempDir(`auth-${auth}`);
    project = snapshotProject();
    registry = await startRegistry(join(work, "registry"), auth);
  });

  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    if (project) await rm(project, { recursive: true, force: true });
  });

  it.skipIf(unavailable !== undefined)(
    "refuses a wrong password with BERTH_IMAGE_REGISTRY_AUTH and takes the right one",
    async () => {
      const baseArchive = await localBaseArchive();
      const tag = `${registry.host}/berth:auth`;
      const args = [
        "build",
        "--project",
        project,
        "--tag",
        tag,
        "--base",
        `oci-archive:${baseArchive}`,
        "--push",
        "--insecure-registry",
      ];
      const home = join(work, "home");
      // No credentials file may leak in from the machine: point every lookup into the test's directory.
      const isolated = {
        BERTH_HOME: home,
        HOME: work,
        REGISTRY_AUTH_FILE: join(work, "none.json"),
        DOCKER_CONFIG: work,
      };

      const refused = await berth(args, {
        ...isolated,
        BERTH_REGISTRY_USERNAME: TEST_USER,
        BERTH_REGISTRY_PASSWORD: "wrong",
      });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("BERTH_IMAGE_REGISTRY_AUTH");
      expect(refused.stderr).toContain(`user "${TEST_USER}"`);

      const anonymous = await berth(args, isolated);
      expect(anonymous.code).toBe(1);
      expect(anonymous.stderr).toContain("BERTH_IMAGE_REGISTRY_AUTH");

      const accepted = await berth([...args, "--json"], {
        ...isolated,
        BERTH_REGISTRY_USERNAME: TEST_USER,
        BERTH_REGISTRY_PASSWORD: TEST_PASSWORD,
      });
      expect(accepted.code, accepted.stderr).toBe(0);
      const result = JSON.parse(accepted.stdout) as { manifestDigest: string };
      const inspected = JSON.parse(
        await runOk("skopeo", [
          "inspect",
          "--tls-verify=false",
          "--creds",
          `${TEST_USER}:${TEST_PASSWORD}`,
          `docker://${tag}`,
        ]),
      ) as { Digest: string };
      expect(inspected.Digest).toBe(result.manifestDigest);
    },
  );
});
