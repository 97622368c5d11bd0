#!/usr/bin/env node
// The Dockerfile's prune step: after `npm ci` and `npm run build`, deletes from node_modules everything
// `berth build` would leave out (dev packages, other llama.cpp binaries, maps, types), by the same rules.
//
// usage: node scripts/image/prune-node-modules.mjs [--variant cpu|cuda|vulkan] [PROJECT_DIR]
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  options: { variant: { type: "string", default: "cpu" } },
  allowPositionals: true,
});
const projectDir = resolve(positionals[0] ?? ".");
const prune = await import(join(projectDir, "dist", "image", "prune.js"));
if (!prune.LLAMA_VARIANTS.includes(values.variant)) {
  console.error(`prune-node-modules: --variant must be one of ${prune.LLAMA_VARIANTS.join(", ")}`);
  process.exit(2);
}
const lock = prune.packageLockSchema.parse(
  JSON.parse(readFileSync(join(projectDir, "package-lock.json"), "utf8")),
);
const keep = new Set(prune.selectProductionPackages(lock, values.variant).map((p) => p.path));

let removedPackages = 0;
let removedFiles = 0;
// Lockfile keys are sorted parent-first; removing a parent removes its nested packages with it.
for (const lockPath of Object.keys(lock.packages)) {
  if (lockPath === "" || keep.has(lockPath)) continue;
  const dir = join(projectDir, lockPath);
  if (existsSync(dir)) {
    rmSync(dir, { recursive: true, force: true });
    removedPackages++;
  }
}

function pruneFiles(packageDir, packageName, relative) {
  for (const entry of readdirSync(join(packageDir, relative), { withFileTypes: true })) {
    const rel = relative ? `${relative}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (entry.name === "node_modules") continue; // nested packages are lockfile entries of their own
      pruneFiles(packageDir, packageName, rel);
    } else if (prune.isPrunableModuleFile(packageName, rel)) {
      rmSync(join(packageDir, rel), { force: true });
      removedFiles++;
    }
  }
}
for (const lockPath of keep) {
  const dir = join(projectDir, lockPath);
  if (existsSync(dir)) pruneFiles(dir, prune.packageNameOfLockPath(lockPath), "");
}
for (const name of readdirSync(join(projectDir, "node_modules"))) {
  if (prune.isPrunableModulesEntry(name))
    rmSync(join(projectDir, "node_modules", name), { recursive: true, force: true });
}
// Compiled source maps are not read at run time either.
function pruneDist(relative) {
  for (const entry of readdirSync(join(projectDir, relative), { withFileTypes: true })) {
    const rel = `${relative}/${entry.name}`;
    if (entry.isDirectory()) pruneDist(rel);
    else if (prune.isPrunableAppFile(rel)) rmSync(join(projectDir, rel), { force: true });
  }
}
if (existsSync(join(projectDir, "dist"))) pruneDist("dist");
console.log(
  `prune-node-modules: kept ${keep.size} packages (${values.variant}), removed ${removedPackages} packages and ${removedFiles} files`,
);
