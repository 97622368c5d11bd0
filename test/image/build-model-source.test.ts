// `berth build --model SOURCE`: the model comes through the model store (here hf:// from the
// hub-compatible test server), is baked in as its own layer, and the image is reproducible: the
// same source pulled into another, empty cache gives the same digest, and the same bytes from a
// local file give the same model layer. A source that cannot be had is one line, exit 1, no image.
import { copyFileSync, existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { GGUF_REPO, isolatedEnv, makeHubFolder } from "../models/fixtures.js";
import { type HubServer, startHubServer } from "../support/hub-server.js";
import { berth, berthBuild, localBaseArchive, snapshotProject, tempDir } from "./fixtures.js";
import { containerToolsMissing } from "./podman.js";

const missing = containerToolsMissing();
if (missing) console.warn(`test/image/build-model-source: skipped: ${missing}`);

describe.skipIf(missing !== undefined)("berth build --model SOURCE", () => {
  let work: string;
  let project: string;
  let baseArchive: string;
  let hubRoot: string;
  let hub: HubServer;

  beforeAll(async () => {
    work = tempDir("build-source");
    project = snapshotProject();
    baseArchive = await localBaseArchive();
    hubRoot = await makeHubFolder();
    hub = await startHubServer({ root: hubRoot });
  });

  afterAll(async () => {
    await hub?.close();
    for (const dir of [work, project, hubRoot]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  const buildArgs = (model: string, archive: string) => [
    "--tag",
    "localhost/berth:model-source",
    "--base",
    `oci-archive:${baseArchive}`,
    "--model",
    model,
    "--oci-archive",
    archive,
  ];

  it("bakes a pulled hf:// model as its own layer; the same model gives the same digest", async () => {
    const source = `hf://${GGUF_REPO}:Q8_0`;
    const first = await berthBuild(
      buildArgs(source, join(work, "a.oci.tar")),
      isolatedEnv(join(work, "home-a"), { HF_ENDPOINT: hub.url }),
      project,
    );
    const fetched = hub.requests.filter((request) => request.bytesSent > 0).length;
    expect(fetched).toBeGreaterThan(0);
    const modelLayer = first.layers.find((layer) => layer.name === "model");
    expect(modelLayer).toBeDefined();

    // Another machine (an empty cache) pulling the same source: byte-identical image.
    const second = await berthBuild(
      buildArgs(source, join(work, "b.oci.tar")),
      isolatedEnv(join(work, "home-b"), { HF_ENDPOINT: hub.url }),
      project,
    );
    expect(hub.requests.filter((request) => request.bytesSent > 0).length).toBeGreaterThan(fetched);
    expect(second.manifestDigest).toBe(first.manifestDigest);

    // The same bytes from a local file: the same model layer (the layer is the model, nothing else).
    const local = join(work, "model.gguf");
    copyFileSync(await ensureTinyModel({ shape: "tiny", dtype: "q8_0" }), local);
    const fromFile = await berthBuild(
      buildArgs(local, join(work, "c.oci.tar")),
      isolatedEnv(join(work, "home-c")),
      project,
    );
    expect(fromFile.layers.find((layer) => layer.name === "model")?.digest).toBe(modelLayer?.digest);
  });

  it("a source that cannot be had: one line naming it, exit 1, no archive written", async () => {
    const archive = join(work, "none.oci.tar");
    const result = await berth(
      ["build", "--project", project, ...buildArgs("hf://berth-test/no-such-repo:Q8_0", archive)],
      isolatedEnv(join(work, "home-d"), { HF_ENDPOINT: hub.url }),
    );
    expect(result.code).toBe(1);
    const lines = result.stderr
      .trimEnd()
      .split("\n")
      .filter((line) => !line.startsWith("pull "));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("hf://berth-test/no-such-repo:Q8_0");
    expect(existsSync(archive)).toBe(false);
  });
});
