// What Berth's own layers hold, read from the project directory: production node_modules (selected by
// package-lock.json and pruned by src/image/prune.ts), the compiled app, an optional model file.
// Paths, modes, owners and times are normalised here so the same files always give the same tar.
import { readdir, readFile, readlink, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { ImageError } from "./errors.js";
import type { LayerSpec } from "./layer.js";
import {
  isPrunableAppFile,
  isPrunableModuleFile,
  type LlamaVariant,
  packageLockSchema,
  packageNameOfLockPath,
  selectProductionPackages,
} from "./prune.js";
import type { TarEntry } from "./tar.js";

/** Where things live inside the image. */
export const IMAGE_APP_DIR = "app";
export const IMAGE_MODELS_DIR = "models";
export const IMAGE_MODEL_FILE = "models/model.gguf";
export const IMAGE_HOME_DIR = "home/berth";
export const IMAGE_UID = 10001;

interface NormalizeOptions {
  /** Seconds since the epoch, for every entry (SOURCE_DATE_EPOCH, else 0). */
  mtime: number;
}

function fileEntry(
  imagePath: string,
  source: string,
  size: number,
  mode: number,
  mtimeMs: number,
  options: NormalizeOptions,
): TarEntry {
  return {
    path: imagePath,
    type: "file",
    mode: mode & 0o111 ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    mtime: options.mtime,
    size,
    source: { kind: "file", path: source, stamp: `${size}:${mtimeMs}` },
  };
}

function directoryEntry(imagePath: string, options: NormalizeOptions, owner = 0): TarEntry {
  return {
    path: imagePath,
    type: "directory",
    mode: 0o755,
    uid: owner,
    gid: owner,
    mtime: options.mtime,
    size: 0,
  };
}

/** Adds the missing parent directories and sorts by path bytes, so parents precede children. */
export function withParentsSorted(entries: TarEntry[], options: NormalizeOptions): TarEntry[] {
  const byPath = new Map<string, TarEntry>();
  for (const entry of entries) byPath.set(entry.path, entry);
  for (const entry of entries) {
    let slash = entry.path.lastIndexOf("/");
    while (slash > 0) {
      const parent = entry.path.slice(0, slash);
      if (!byPath.has(parent)) byPath.set(parent, directoryEntry(parent, options));
      slash = parent.lastIndexOf("/");
    }
  }
  return [...byPath.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/** Files under `dir` (recursively) as entries under `imagePrefix`; `skip` gets paths relative to `dir`. */
async function walk(
  dir: string,
  imagePrefix: string,
  options: NormalizeOptions,
  skip: (relativePath: string, isDirectory: boolean) => boolean,
  relative = "",
  out: TarEntry[] = [],
): Promise<TarEntry[]> {
  const here = relative ? join(dir, relative) : dir;
  const children = await readdir(here, { withFileTypes: true });
  for (const child of children) {
    const rel = relative ? `${relative}/${child.name}` : child.name;
    const imagePath = `${imagePrefix}/${rel}`;
    if (skip(rel, child.isDirectory())) continue;
    const full = join(dir, rel);
    if (child.isDirectory()) {
      out.push(directoryEntry(imagePath, options));
      await walk(dir, imagePrefix, options, skip, rel, out);
    } else if (child.isSymbolicLink()) {
      out.push({
        path: imagePath,
        type: "symlink",
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime: options.mtime,
        size: 0,
        linkTarget: await readlink(full),
      });
    } else if (child.isFile()) {
      const info = await stat(full);
      out.push(fileEntry(imagePath, full, info.size, info.mode, info.mtimeMs, options));
    }
  }
  return out;
}

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, "utf8"));
}

/** The production node_modules of `projectDir` for `variant`, as one layer. */
export async function dependenciesLayer(
  projectDir: string,
  variant: LlamaVariant,
  options: NormalizeOptions,
): Promise<LayerSpec> {
  let lockJson: unknown;
  try {
    lockJson = await readJson(join(projectDir, "package-lock.json"));
  } catch (error) {
    throw new ImageError(
      "BERTH_IMAGE_INPUT_INVALID",
      `cannot read ${join(projectDir, "package-lock.json")}: berth build packages the dependencies the lockfile names`,
      { cause: error },
    );
  }
  const lock = packageLockSchema.parse(lockJson);
  const entries: TarEntry[] = [];
  for (const selected of selectProductionPackages(lock, variant)) {
    const dir = join(projectDir, selected.path);
    const wanted = lock.packages[selected.path]?.version;
    let installed: string | undefined;
    try {
      installed = ((await readJson(join(dir, "package.json"))) as { version?: string }).version;
    } catch {
      if (selected.optional) continue; // npm skips optional packages it cannot use; so do we
      throw new ImageError(
        "BERTH_IMAGE_INPUT_INVALID",
        `${selected.path} is in package-lock.json but not installed; run \`npm ci\` first`,
      );
    }
    if (wanted !== undefined && installed !== wanted) {
      throw new ImageError(
        "BERTH_IMAGE_INPUT_INVALID",
        `${selected.path} is ${installed ?? "unversioned"} but package-lock.json wants ${wanted}; run \`npm ci\` first`,
      );
    }
    const packageName = packageNameOfLockPath(selected.path);
    const imagePrefix = `${IMAGE_APP_DIR}/${selected.path}`;
    entries.push(directoryEntry(imagePrefix, options));
    // Nested node_modules hold packages of their own, selected (or not) by their own lockfile entries.
    const files = await walk(dir, imagePrefix, options, (rel, isDirectory) =>
      isDirectory
        ? rel === "node_modules" || rel.endsWith("/node_modules")
        : isPrunableModuleFile(packageName, rel),
    );
    entries.push(...files);
  }
  return {
    name: "dependencies",
    createdBy: `berth build: production node_modules (llama.cpp ${variant})`,
    entries: withParentsSorted(entries, options),
  };
}

/** dist/ (compiled, without source maps), bin/, package.json, plus the server user's home and /models. */
export async function applicationLayer(projectDir: string, options: NormalizeOptions): Promise<LayerSpec> {
  try {
    await stat(join(projectDir, "dist", "cli", "main.js"));
  } catch (error) {
    throw new ImageError(
      "BERTH_IMAGE_INPUT_INVALID",
      `${join(projectDir, "dist", "cli", "main.js")} is missing: run \`npm run build\` before \`berth build\``,
      { cause: error },
    );
  }
  const entries: TarEntry[] = [];
  const packageJson = join(projectDir, "package.json");
  const info = await stat(packageJson);
  entries.push(
    fileEntry(`${IMAGE_APP_DIR}/package.json`, packageJson, info.size, info.mode, info.mtimeMs, options),
  );
  for (const dir of ["bin", "dist"]) {
    entries.push(directoryEntry(`${IMAGE_APP_DIR}/${dir}`, options));
    const files = await walk(join(projectDir, dir), `${IMAGE_APP_DIR}/${dir}`, options, (rel, isDirectory) =>
      isDirectory ? false : isPrunableAppFile(rel),
    );
    entries.push(...files);
  }
  entries.push(directoryEntry(IMAGE_HOME_DIR, options, IMAGE_UID));
  entries.push(directoryEntry(IMAGE_MODELS_DIR, options));
  return {
    name: "application",
    createdBy: "berth build: dist, bin, package.json",
    entries: withParentsSorted(entries, options),
  };
}

/** The model file as /models/model.gguf. */
export async function modelLayer(modelPath: string, options: NormalizeOptions): Promise<LayerSpec> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(modelPath);
  } catch (error) {
    throw new ImageError("BERTH_IMAGE_INPUT_INVALID", `model file ${modelPath} does not exist`, {
      cause: error,
    });
  }
  if (!info.isFile()) throw new ImageError("BERTH_IMAGE_INPUT_INVALID", `model ${modelPath} is not a file`);
  return {
    name: "model",
    createdBy: `berth build: model ${basename(modelPath)}`,
    entries: withParentsSorted(
      [
        directoryEntry(IMAGE_MODELS_DIR, options),
        fileEntry(IMAGE_MODEL_FILE, modelPath, info.size, 0o644, info.mtimeMs, options),
      ],
      options,
    ),
  };
}
