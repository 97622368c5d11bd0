// Shared inputs of the image tests: the repository, the local Node base image (scripts/image/make-base.sh,
// cached under BERTH_HOME), the tiny GPT-2 model, and `berth` run as a real process.
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { berthHome } from "../../src/util/home.js";
import { type CommandResult, run, runOk } from "./podman.js";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BASE_IMAGE_NAME = "localhost/berth-node-base:20";

/** A temp dir for one test, under BERTH_TEST_TMP if set, else the OS temp dir. */
export function tempDir(prefix: string): string {
  const root = process.env.BERTH_TEST_TMP ?? tmpdir();
  mkdirSync(root, { recursive: true });
  return mkdtempSync(join(root, `berth-${prefix}-`));
}

/** The OCI archive of the local Node 20 base (built once, then cached under BERTH_HOME). */
export async function localBaseArchive(): Promise<string> {
  const out = await runOk("bash", [join(REPO_ROOT, "scripts", "image", "make-base.sh")], {
    env: { ...process.env, BERTH_HOME: berthHome() },
    timeoutMs: 600_000,
  });
  return out.trim().split("\n").at(-1) as string;
}

/** The tiny GPT-2 model (q8_0), copied into a directory of its own as model.gguf, readable by uid 10001. */
export async function tinyModelDir(): Promise<{ dir: string; file: string }> {
  const source = await ensureTinyModel({ shape: "tiny", dtype: "q8_0" });
  const dir = tempDir("model");
  const file = join(dir, "model.gguf");
  copyFileSync(source, file);
  chmodSync(dir, 0o755);
  chmodSync(file, 0o644);
  return { dir, file };
}

/**
 * A snapshot of what `berth build` packages (package.json, the lockfile, bin/, dist/; node_modules
 * linked), so builds compared with each other see the same files even while dist/ is rebuilt.
 */
export function snapshotProject(): string {
  const dir = tempDir("project");
  for (const name of ["package.json", "package-lock.json", "bin", "dist"]) {
    cpSync(join(REPO_ROOT, name), join(dir, name), { recursive: true, preserveTimestamps: true });
  }
  symlinkSync(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

/** Runs `node bin/berth.js ARGS` from the repository (needs `npm run build`). */
export function berth(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return run(process.execPath, [join(REPO_ROOT, "bin", "berth.js"), ...args], {
    env: { ...process.env, ...env },
    timeoutMs: 600_000,
    cwd: REPO_ROOT,
  });
}

export interface BuildJson {
  reference: string;
  manifestDigest: string;
  configDigest: string;
  base: { description: string; manifestDigest: string; layers: number };
  layers: Array<{ name: string; digest: string; size: number; uncompressedSize: number; cached: boolean }>;
  compressedSize: number;
  ociArchive?: string;
  push?: {
    registry: string;
    repository: string;
    tag: string;
    digest: string;
    blobUploadRequests: number;
    blobsUploaded: number;
    blobsSkipped: number;
    bytesUploaded: number;
  };
}

/** `berth build … --json`, failing with its stderr when it fails. */
export async function berthBuild(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  project = REPO_ROOT,
): Promise<BuildJson> {
  const result = await berth(["build", "--project", project, "--json", ...args], env);
  if (result.code !== 0) throw new Error(`berth build exited ${result.code}:\n${result.stderr.slice(-4000)}`);
  return JSON.parse(result.stdout) as BuildJson;
}
