// `berth serve --model SOURCE` pulls through the store first (with progress) and serves the pulled
// file, against the hub-compatible test server; a source that cannot be had is one line, exit 1.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HubServer, startHubServer } from "../support/hub-server.js";
import { REPO_ROOT, type ServeProcess, startServe } from "../support/serve-process.js";
import { GGUF_REPO, isolatedEnv, makeHubFolder } from "./fixtures.js";

let root: string;
let scratch: string;
let hub: HubServer;
let served: ServeProcess | undefined;

beforeAll(async () => {
  root = await makeHubFolder();
  scratch = await mkdtemp(join(tmpdir(), "berth-serve-source-"));
  hub = await startHubServer({ root });
});

afterAll(async () => {
  served?.kill();
  await hub?.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe("berth serve --model SOURCE", () => {
  it("pulls hf://ORG/REPO:QUANT with progress, then serves it under the file's name", async () => {
    const env = isolatedEnv(join(scratch, "a"), { HF_ENDPOINT: hub.url });
    served = await startServe(
      ["--model", `hf://${GGUF_REPO}:Q8_0`, "--parallel", "1", "--threads", "1", "--ctx", "128"],
      { env },
    );
    expect(served.stderr()).toContain(`pull hf://${GGUF_REPO}:Q8_0: 100%`);
    const models = (await (await fetch(`${served.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(models.data.map((model) => model.id)).toEqual(["tiny-gpt2-Q8_0"]);
    const completion = await fetch(`${served.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-gpt2-Q8_0", prompt: "Hello", max_tokens: 3 }),
    });
    expect(completion.status).toBe(200);
    // The file came from the hub into the HF cache layout of this home.
    const storage = hub.requests.filter((request) => request.method === "GET" && request.bytesSent > 0);
    expect(storage.length).toBeGreaterThan(0);
    served.kill();
    await served.exited;
    served = undefined;
  });

  it("a source that cannot be had: one line naming it on stderr, exit 1, no stack trace", async () => {
    const env = isolatedEnv(join(scratch, "b"), { HF_ENDPOINT: hub.url });
    const child = spawn(
      process.execPath,
      ["bin/berth.js", "serve", "--model", "hf://berth-test/no-such-repo:Q8_0", "--port", "0"],
      { cwd: REPO_ROOT, env },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    expect(code).toBe(1);
    const lines = stderr
      .trimEnd()
      .split("\n")
      .filter((line) => !line.startsWith("pull "));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("hf://berth-test/no-such-repo:Q8_0");
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
