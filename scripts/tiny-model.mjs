// Prints the path of Berth's tiny test model (GPT-2 architecture, Q8_0; written on first use into
// Berth's model cache), for build scripts that need a model before `npm run build` has run: without
// dist/ it compiles src/ into a scratch folder first. Usage: node scripts/tiny-model.mjs REPO_ROOT
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const root = process.argv[2] ?? process.cwd();
let compiled = join(root, "dist");
let scratch;
if (!existsSync(join(compiled, "models", "tiny.js"))) {
  mkdirSync(join(root, ".berth"), { recursive: true });
  scratch = mkdtempSync(join(root, ".berth", "tiny-model-"));
  compiled = join(scratch, "dist");
  execFileSync(
    process.execPath,
    [
      join(root, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      join(root, "tsconfig.build.json"),
      "--outDir",
      compiled,
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  // The compiled modules resolve their packages from the repository's node_modules.
  symlinkSync(join(root, "node_modules"), join(scratch, "node_modules"));
}
try {
  const { ensureTinyModel } = await import(pathToFileURL(join(compiled, "models", "tiny.js")).href);
  console.log(await ensureTinyModel({ dtype: "q8_0" }));
} finally {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}
