// Which installed npm packages and files go into a container image: production packages from
// package-lock.json, only the llama.cpp binary package of the target, no files the runtime never reads.
// Pure rules, shared by `berth build` and the Dockerfile's prune step (scripts/image/prune-node-modules.mjs).
import { z } from "zod";

/** The llama.cpp build an image carries. `cpu` is the default; `cuda` is for GPU nodes (Dockerfile.cuda). */
export type LlamaVariant = "cpu" | "cuda" | "vulkan";
export const LLAMA_VARIANTS: readonly LlamaVariant[] = ["cpu", "cuda", "vulkan"];

const LLAMA_BINARY_SCOPE = "@node-llama-cpp/";

/**
 * node-llama-cpp's prebuilt binary packages kept per variant (linux/amd64 images). The GPU variants keep
 * the CPU package too: node-llama-cpp falls back to it when the node has no usable GPU.
 */
export const LLAMA_BINARY_PACKAGES: Record<LlamaVariant, readonly string[]> = {
  cpu: ["@node-llama-cpp/linux-x64"],
  cuda: ["@node-llama-cpp/linux-x64", "@node-llama-cpp/linux-x64-cuda", "@node-llama-cpp/linux-x64-cuda-ext"],
  vulkan: ["@node-llama-cpp/linux-x64", "@node-llama-cpp/linux-x64-vulkan"],
};

const lockPackageSchema = z.looseObject({
  version: z.string().optional(),
  dev: z.boolean().optional(),
  devOptional: z.boolean().optional(),
  optional: z.boolean().optional(),
  link: z.boolean().optional(),
  os: z.array(z.string()).optional(),
  cpu: z.array(z.string()).optional(),
});

export const packageLockSchema = z.looseObject({
  lockfileVersion: z.number().int().min(2, "package-lock.json v2 or v3 is required (npm 7 or later)"),
  packages: z.record(z.string(), lockPackageSchema),
});

export type PackageLock = z.output<typeof packageLockSchema>;

export interface SelectedPackage {
  /** Directory relative to the project root, e.g. `node_modules/fastify`. */
  path: string;
  /** Optional packages may be absent from node_modules (npm skips those for other platforms). */
  optional: boolean;
}

/** The package name a lockfile key installs, e.g. `node_modules/a/node_modules/@s/b` → `@s/b`. */
export function packageNameOfLockPath(lockPath: string): string {
  const at = lockPath.lastIndexOf("node_modules/");
  return at < 0 ? lockPath : lockPath.slice(at + "node_modules/".length);
}

function matchesPlatform(allowed: readonly string[] | undefined, value: string): boolean {
  if (!allowed || allowed.length === 0) return true;
  if (allowed.includes(`!${value}`)) return false;
  const positive = allowed.filter((entry) => !entry.startsWith("!"));
  return positive.length === 0 || positive.includes(value);
}

/**
 * Production packages for a linux/amd64 image. Drops dev packages and `devOptional` ones (reachable in
 * production only as optional peers, e.g. typescript through node-llama-cpp, which `npm ci --omit=dev`
 * would still install), other platforms' optional packages, and every llama.cpp binary package but the
 * variant's. Sorted by path.
 */
export function selectProductionPackages(lock: PackageLock, variant: LlamaVariant): SelectedPackage[] {
  const keepLlama = new Set(LLAMA_BINARY_PACKAGES[variant]);
  const selected: SelectedPackage[] = [];
  for (const [lockPath, entry] of Object.entries(lock.packages)) {
    if (lockPath === "" || !lockPath.includes("node_modules/")) continue; // the root project, workspaces
    if (entry.dev || entry.devOptional || entry.link) continue;
    const name = packageNameOfLockPath(lockPath);
    if (name.startsWith(LLAMA_BINARY_SCOPE) && !keepLlama.has(name)) continue;
    if (!matchesPlatform(entry.os, "linux") || !matchesPlatform(entry.cpu, "x64")) continue;
    selected.push({ path: lockPath, optional: entry.optional === true });
  }
  return selected.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const LICENSE_LIKE = /^(licen[cs]e|notice|copying|authors)/i;

/**
 * Files inside an installed package that the runtime never reads: source maps, type declarations,
 * Markdown other than licences, and node-llama-cpp's llama.cpp source bundle (34 MB, only used to
 * build llama.cpp from source, which an image never does). `relativePath` is relative to the package dir.
 */
export function isPrunableModuleFile(packageName: string, relativePath: string): boolean {
  const base = relativePath.slice(relativePath.lastIndexOf("/") + 1);
  if (packageName === "node-llama-cpp" && relativePath === "llama/gitRelease.bundle") return true;
  if (base.endsWith(".map") || base.endsWith(".tsbuildinfo")) return true;
  if (/\.d\.[cm]?ts$/.test(base)) return true;
  if (/\.(md|markdown)$/i.test(base) && !LICENSE_LIKE.test(base)) return true;
  return false;
}

/** Files of the project itself (dist/, bin/) that an image leaves out. */
export function isPrunableAppFile(relativePath: string): boolean {
  return relativePath.endsWith(".map") || relativePath.endsWith(".tsbuildinfo");
}

/** Directory names inside node_modules never copied: npm's command shims and its hidden lockfile. */
export function isPrunableModulesEntry(name: string): boolean {
  return name === ".bin" || name === ".package-lock.json" || name === ".cache";
}
