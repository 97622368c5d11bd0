// The image the last `berth build` produced, kept under BERTH_HOME/state so `berth render`/`deploy`
// can use it when asked (e.g. `--image last-build`): the pushed reference pinned by digest.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { stateDir } from "../util/home.js";
import type { BuildImageResult } from "./build.js";

const lastBuildSchema = z.object({
  reference: z.string(),
  digest: z.string(),
  pushed: z.boolean(),
  ociArchive: z.string().optional(),
});
export type LastBuild = z.output<typeof lastBuildSchema>;

export function lastBuildPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), "image", "last-build.json");
}

export async function recordLastBuild(
  result: BuildImageResult,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const record: LastBuild = {
    reference: result.reference,
    digest: result.manifestDigest,
    pushed: result.push !== undefined,
    ...(result.ociArchive ? { ociArchive: result.ociArchive } : {}),
  };
  const path = lastBuildPath(env);
  await mkdir(join(stateDir(env), "image"), { recursive: true });
  await writeFile(`${path}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

export async function readLastBuild(env: NodeJS.ProcessEnv = process.env): Promise<LastBuild | undefined> {
  try {
    return lastBuildSchema.parse(JSON.parse(await readFile(lastBuildPath(env), "utf8")));
  } catch {
    return undefined;
  }
}

/** What a Deployment should run: `reference@digest` once pushed (immutable), else the tag as built. */
export function deployableReference(build: LastBuild): string {
  return build.pushed
    ? `${build.reference.replace(/@sha256:[a-f0-9]{64}$/, "")}@${build.digest}`
    : build.reference;
}
