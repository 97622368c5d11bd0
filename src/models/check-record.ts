// The model check's memory: a file that passed checkModelFile is not parsed again while it is the
// same file, so a replica's cold start skips the JS parse of the metadata that llama.cpp repeats anyway.
import { createHash, randomUUID } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { modelCacheDir } from "../util/home.js";
import { checkModelFile } from "./check.js";

/**
 * Part of every record: bump it when checkModelFile starts refusing something it accepted, so files
 * checked by the older code are checked again.
 */
export const CHECK_RECORD_VERSION = 1;

/**
 * What identifies the file's bytes without reading them: device, inode, size and mtime, plus ctime,
 * which no user can set (cp -p or touch -r restore mtime, not ctime) and which any write, rename or
 * relink of the inode moves. Nanoseconds, so a rewrite within the same millisecond still counts.
 */
async function fileIdentity(path: string): Promise<string> {
  const info = await stat(path, { bigint: true });
  return [CHECK_RECORD_VERSION, info.dev, info.ino, info.size, info.mtimeNs, info.ctimeNs].join(":");
}

function recordPath(path: string, env: NodeJS.ProcessEnv): string {
  const key = createHash("sha256").update(resolve(path)).digest("hex").slice(0, 32);
  return join(modelCacheDir(env), "checked", `${key}.json`);
}

interface CheckRecord {
  path: string;
  identity: string;
}

async function recordedIdentity(path: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  try {
    const record = JSON.parse(await readFile(recordPath(path, env), "utf8")) as Partial<CheckRecord>;
    return record.path === resolve(path) ? record.identity : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Notes that `path` passed the check, as it is now. Best effort: a read-only BERTH_HOME (a
 * container's) only means the next start checks again.
 */
export async function recordCheckedModel(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
  identity?: string,
): Promise<void> {
  const target = recordPath(path, env);
  const temporary = `${target}.${randomUUID().slice(0, 8)}.tmp`;
  try {
    const record: CheckRecord = { path: resolve(path), identity: identity ?? (await fileIdentity(path)) };
    await mkdir(join(target, ".."), { recursive: true });
    await writeFile(temporary, JSON.stringify(record));
    await rename(temporary, target);
  } catch {
    await rm(temporary, { force: true }).catch(() => undefined);
  }
}

/**
 * checkModelFile, unless this very file (same identity) passed it before. Returns whether the check
 * ran. Throws what checkModelFile throws; a file that fails is never recorded.
 */
export async function checkModelFileOnce(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ checked: boolean }> {
  const [recorded, current] = await Promise.all([
    recordedIdentity(path, env),
    fileIdentity(path).catch(() => undefined),
  ]);
  if (recorded !== undefined && recorded === current) return { checked: false };
  await checkModelFile(path);
  // The identity from before the check: a file changed while it was read is checked again next time.
  if (current !== undefined) await recordCheckedModel(path, env, current);
  return { checked: true };
}
