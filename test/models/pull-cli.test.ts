// `berth model pull|ls|path|rm` end to end (node bin/berth.js, needs `npm run build`) against the
// hub-compatible server: progress on stderr, the path on stdout, --json, one-line errors with exit
// codes, and two processes pulling one model at once downloading it once.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runBerth as berth } from "../support/berth-cli.js";
import { type HubServer, startHubServer } from "../support/hub-server.js";
import { GGUF_REPO, isolatedEnv, makeHubFolder } from "./fixtures.js";

let root: string;
let scratch: string;
let hub: HubServer;

beforeAll(async () => {
  root = await makeHubFolder();
  scratch = await mkdtemp(join(tmpdir(), "berth-pull-cli-"));
  hub = await startHubServer({ root });
});

afterAll(async () => {
  await hub?.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe("berth model pull|ls|path|rm", () => {
  test("pull shows progress, prints the path; again it is cached; ls, path and rm see it", async () => {
    const env = isolatedEnv(join(scratch, "a"), { HF_ENDPOINT: hub.url });
    const source = `hf://${GGUF_REPO}:Q8_0`;
    const first = await berth(["model", "pull", source], env);
    expect(first.stderr).toMatch(/pull hf:\/\/berth-test\/tiny-gpt2-GGUF:Q8_0: 100% of 5\.\d MiB/);
    expect(first.stderr).toMatch(
      /^pulled hf:\/\/\S+ \(5\.\d MiB, revision [0-9a-f]{12}, sha256 [0-9a-f]{12}, [\d.]+ s\)$/m,
    );
    expect(first.code).toBe(0);
    const path = first.stdout.trim();
    expect(path).toMatch(
      /hf\/hub\/models--berth-test--tiny-gpt2-GGUF\/snapshots\/[0-9a-f]{40}\/tiny-gpt2-Q8_0\.gguf$/,
    );

    const requests = hub.requests.length;
    const second = await berth(["model", "pull", source, "--json"], env);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({
      path,
      kind: "hf",
      fromCache: true,
      file: "tiny-gpt2-Q8_0.gguf",
    });
    expect(hub.requests.length).toBe(requests);

    const ls = await berth(["model", "ls"], env);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^SOURCE\s+REVISION\s+FILE\s+SIZE\s+QUANT\s+LAST USED$/m);
    expect(ls.stdout).toMatch(
      /hf:\/\/berth-test\/tiny-gpt2-GGUF:Q8_0\s+[0-9a-f]{12}\s+tiny-gpt2-Q8_0\.gguf\s+5\.\d MiB\s+Q8_0\s+just now/,
    );

    const where = await berth(["model", "path", source], { ...env, HF_ENDPOINT: "http://127.0.0.1:9" });
    expect(where).toMatchObject({ code: 0, stdout: `${path}\n` });

    const removed = await berth(["model", "rm", source], env);
    expect(removed).toMatchObject({ code: 0, stdout: `removed ${source}\n` });
    const gone = await berth(["model", "path", source], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^berth: .*not cached.*\(BERTH_MODEL_NOT_CACHED\)\n$/);
  });

  test("unreachable and not cached: one line naming the host, exit 1; a bad source: exit 2", async () => {
    const env = isolatedEnv(join(scratch, "b"), { HF_ENDPOINT: "http://127.0.0.1:9" });
    const run = await berth(["model", "pull", `hf://${GGUF_REPO}:Q8_0`], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `berth: hf://${GGUF_REPO}:Q8_0: cannot reach 127.0.0.1:9 (ECONNREFUSED); the model is not cached (BERTH_MODEL_SOURCE_UNREACHABLE)\n`,
    );
    const bad = await berth(["model", "pull", "hf://just-a-name"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^berth: hf:\/\/just-a-name: "just-a-name" names no repository .*\n$/);
  });

  test("a pull killed mid-download leaves no file that looks done; the next one takes its lock and resumes", async () => {
    const file = (await hub.repo(GGUF_REPO)).files.find((f) => f.path === "tiny-gpt2-F16.gguf");
    if (!file) throw new Error("fixture");
    hub.setFaults([{ kind: "slow", file: file.path, bytesPerSecond: 2 * 1024 * 1024, times: 1 }]);
    const env = isolatedEnv(join(scratch, "d"), { HF_ENDPOINT: hub.url });
    const storage = join(env.HF_HOME as string, "hub", "models--berth-test--tiny-gpt2-GGUF");
    const child = spawn(process.execPath, ["bin/berth.js", "model", "pull", `hf://${GGUF_REPO}:F16`], {
      env,
    });
    // Killed once it reports progress AND bytes are on disk: a progress line counts bytes received,
    // which may still sit in the write stream's buffer, so the file itself is the condition.
    // Progress lines carry the percent reached when a new tenth began ("13% of 15.1 MiB"), which
    // depends on read sizes: any 1-99% line will do. A pull that ends first fails here, not by timeout.
    await new Promise<void>((resolve, reject) => {
      let printed = "";
      child.stderr.on("data", (chunk: Buffer) => {
        printed += chunk.toString();
        if (/\b[1-9]\d?% of/.test(printed)) resolve();
      });
      child.once("exit", (code) =>
        reject(new Error(`the pull ended (${code}) before a progress line:\n${printed}`)),
      );
    });
    const partial = join(storage, "blobs", `${file.sha256}.incomplete`);
    const { existsSync, readdirSync, statSync } = await import("node:fs");
    const deadline = Date.now() + 60_000;
    while (!(existsSync(partial) && statSync(partial).size > 0)) {
      if (Date.now() > deadline) throw new Error(`no bytes in ${partial} after a progress line`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("close", resolve));
    expect(readdirSync(join(storage, "blobs"))).toEqual([`${file.sha256}.incomplete`]);
    expect(existsSync(join(storage, "snapshots"))).toBe(false);
    // The killed process's lock is still there; its owner is gone, so it is stale.
    expect(
      readdirSync(join(env.HF_HOME as string, "hub", ".locks", "models--berth-test--tiny-gpt2-GGUF")),
    ).toEqual([`${file.sha256}.berth.lock`]);
    hub.setFaults([]);
    const first = hub.requests.length;
    const again = await berth(["model", "pull", `hf://${GGUF_REPO}:F16`, "--json"], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ sha256: file.sha256, fromCache: false });
    const resumed = hub.requests
      .slice(first)
      .filter((r) => r.method === "GET" && r.path.includes(file.sha256) && r.range !== "bytes=0-0");
    expect(resumed).toHaveLength(1);
    expect(resumed[0]?.range).toMatch(/^bytes=[1-9]\d*-$/);
  });

  test("two processes pulling one model download it once", async () => {
    const file = (await hub.repo(GGUF_REPO)).files.find((f) => f.path === "tiny-gpt2-F16.gguf");
    if (!file) throw new Error("fixture");
    // Slow enough that the second process starts while the first one downloads.
    hub.setFaults([{ kind: "slow", file: file.path, bytesPerSecond: 4 * 1024 * 1024 }]);
    const env = isolatedEnv(join(scratch, "c"), { HF_ENDPOINT: hub.url });
    const first = hub.requests.length;
    const [a, b] = await Promise.all([
      berth(["model", "pull", `hf://${GGUF_REPO}:F16`, "--json"], env),
      berth(["model", "pull", `hf://${GGUF_REPO}/tiny-gpt2-F16.gguf`, "--json"], env),
    ]);
    hub.setFaults([]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const pa = JSON.parse(a.stdout) as { path: string; sha256: string; fromCache: boolean };
    const pb = JSON.parse(b.stdout) as { path: string; sha256: string; fromCache: boolean };
    expect(pa.path).toBe(pb.path);
    expect([pa.fromCache, pb.fromCache].sort()).toEqual([false, true]);
    const bodies = hub.requests
      .slice(first)
      .filter((r) => r.method === "GET" && r.path.includes(file.sha256) && r.range !== "bytes=0-0");
    expect(bodies).toHaveLength(1);
    expect(bodies[0]?.bytesSent).toBe(file.size);
  });
});
