// The hub-compatible server is faithful, and Berth's cache is Python's: the official Python
// huggingface_hub client (scripts/python-env.sh) downloads from the test server with HF_ENDPOINT
// into an HF cache that Berth then reads offline, and reads offline what Berth downloaded.
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { pullModel } from "../../src/models/store.js";
import { python } from "../support/convert/oracle.js";
import { type HubServer, startHubServer } from "../support/hub-server.js";
import { GGUF_REPO, isolatedEnv, makeHubFolder, PRIVATE_REPO, TOKEN } from "./fixtures.js";

const run = promisify(execFile);

let root: string;
let scratch: string;
let hub: HubServer;

beforeAll(async () => {
  root = await makeHubFolder();
  scratch = await mkdtemp(join(tmpdir(), "berth-py-interop-"));
  hub = await startHubServer({ root, privateRepos: [PRIVATE_REPO], tokens: [TOKEN] });
});

afterAll(async () => {
  await hub?.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

/** Runs Python code with huggingface_hub; its last stdout line is JSON. */
async function py(code: string, env: NodeJS.ProcessEnv): Promise<unknown> {
  const interpreter = await python();
  try {
    const { stdout } = await run(interpreter, ["-c", code], { env, timeout: 120_000 });
    return JSON.parse(stdout.trim().split("\n").at(-1) ?? "null");
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    throw new Error(`python failed: ${message}\n${(stderr ?? "").slice(-3000)}`);
  }
}

const SCAN = `
import json
from huggingface_hub import scan_cache_dir
info = scan_cache_dir()
repos = [{"repo": r.repo_id, "revisions": [{"commit": v.commit_hash, "refs": sorted(v.refs), "files": sorted(f.file_name for f in v.files)} for v in r.revisions]} for r in info.repos]
print(json.dumps({"repos": repos, "warnings": [str(w) for w in info.warnings]}))
`;

describe("Python huggingface_hub and Berth share one cache", () => {
  test("Python downloads from the test hub; Berth then finds the file with no request", async () => {
    const env = isolatedEnv(join(scratch, "py-first"), {
      HF_ENDPOINT: hub.url,
      HF_HUB_DISABLE_TELEMETRY: "1",
    });
    const downloaded = (await py(
      `
import json
from huggingface_hub import hf_hub_download, snapshot_download, model_info
path = hf_hub_download("${GGUF_REPO}", "tiny-gpt2-Q8_0.gguf")
snap = snapshot_download("${GGUF_REPO}", allow_patterns=["*.md"])
info = model_info("${GGUF_REPO}", files_metadata=True)
print(json.dumps({"path": path, "snapshot": snap, "sha": info.sha,
  "lfs": {s.rfilename: (s.lfs.sha256 if s.lfs else None) for s in info.siblings}}))
`,
      env,
    )) as { path: string; sha: string; lfs: Record<string, string | null> };
    const repo = await hub.repo(GGUF_REPO);
    expect(downloaded.sha).toBe(repo.commit);
    expect(downloaded.lfs["tiny-gpt2-Q8_0.gguf"]).toBe(
      repo.files.find((f) => f.path === "tiny-gpt2-Q8_0.gguf")?.sha256,
    );
    expect(downloaded.path).toMatch(new RegExp(`snapshots/${repo.commit}/tiny-gpt2-Q8_0\\.gguf$`));

    const before = hub.requests.length;
    const pulled = await pullModel(`hf://${GGUF_REPO}:Q8_0`, {
      env: { ...env, HF_HUB_OFFLINE: "1", HF_ENDPOINT: "http://127.0.0.1:9" },
    });
    expect(pulled).toMatchObject({ path: downloaded.path, revision: repo.commit, fromCache: true });
    expect(hub.requests.length).toBe(before);
  });

  test("Berth downloads; Python reads it offline and scan_cache_dir finds the layout sound", async () => {
    const env = isolatedEnv(join(scratch, "berth-first"), {
      HF_ENDPOINT: hub.url,
      HF_HUB_DISABLE_TELEMETRY: "1",
      HF_TOKEN: TOKEN,
    });
    const f16 = await pullModel(`hf://${GGUF_REPO}:F16`, { env });
    const secret = await pullModel(`hf://${PRIVATE_REPO}/private-Q8_0.gguf`, { env });
    const repo = await hub.repo(GGUF_REPO);
    const offline = { ...env, HF_HUB_OFFLINE: "1", HF_ENDPOINT: "http://127.0.0.1:9" };
    const read = (await py(
      `
import json
from huggingface_hub import hf_hub_download
print(json.dumps([hf_hub_download("${GGUF_REPO}", "tiny-gpt2-F16.gguf"),
  hf_hub_download("${PRIVATE_REPO}", "private-Q8_0.gguf"),
  hf_hub_download("${GGUF_REPO}", "tiny-gpt2-F16.gguf", revision="${repo.commit}")]))
`,
      offline,
    )) as string[];
    expect(read).toEqual([f16.path, secret.path, f16.path]);
    const scan = (await py(SCAN, offline)) as {
      repos: Array<{ repo: string; revisions: Array<{ commit: string; refs: string[]; files: string[] }> }>;
      warnings: string[];
    };
    expect(scan.warnings).toEqual([]);
    expect(scan.repos.find((r) => r.repo === GGUF_REPO)?.revisions).toEqual([
      { commit: repo.commit, refs: ["main"], files: ["tiny-gpt2-F16.gguf"] },
    ]);
  });

  test("Python resumes a partial download Berth left (the same blobs/ETAG.incomplete)", async () => {
    const env = isolatedEnv(join(scratch, "resume"), { HF_ENDPOINT: hub.url, HF_HUB_DISABLE_TELEMETRY: "1" });
    const file = (await hub.repo(GGUF_REPO)).files.find((f) => f.path === "tiny-gpt2-F16.gguf");
    if (!file) throw new Error("fixture");
    // Berth is interrupted right after a cut at 2 MB, leaving the partial file.
    hub.setFaults([{ kind: "cut", file: file.path, atByte: 2_000_000, times: 1 }]);
    const controller = new AbortController();
    await pullModel(`hf://${GGUF_REPO}:F16`, {
      env,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === "download" && p.receivedBytes >= 2_000_000) controller.abort();
      },
    }).catch(() => undefined);
    hub.setFaults([]);
    const first = hub.requests.length;
    const path = (await py(
      `
import json
from huggingface_hub import hf_hub_download
print(json.dumps(hf_hub_download("${GGUF_REPO}", "tiny-gpt2-F16.gguf")))
`,
      env,
    )) as string;
    const ranges = hub.requests
      .slice(first)
      .filter((r) => r.method === "GET" && r.path.includes(file.sha256))
      .map((r) => r.range);
    expect(ranges).toEqual([`bytes=2000000-`]);
    const again = await pullModel(`hf://${GGUF_REPO}:F16`, { env });
    expect(again).toMatchObject({ path, fromCache: true });
  });
});
