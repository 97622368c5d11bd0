// `berth validate -f FILE`: checks a spec without running anything; problems go to stderr
// as "FILE:LINE field.path: message", one a line, exit code 2. A model source that is a local
// GGUF file is checked too (src/models/check.ts), so a broken file is caught before `up`.
import { readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import type { Command } from "commander";
import {
  fieldLines,
  loadSpecFile,
  type ModelDeployment,
  SpecError,
  type SpecProblem,
  servedName,
} from "../spec/index.js";
import { CliError, EXIT_USAGE } from "./errors.js";

export function register(program: Command): void {
  program
    .command("validate")
    .description(
      "check a ModelDeployment spec file (and its local model files) and print its problems with line and field",
    )
    .requiredOption("-f, --file <path>", "spec file (YAML, one or more documents)")
    .option("--json", "print the validated specs, with defaults applied, as JSON")
    .action(async (options: { file: string; json?: boolean }) => {
      try {
        const spec = await loadSpecFile(options.file);
        await checkLocalModels(options.file, spec.deployments);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(spec.deployments, null, 2)}\n`);
          return;
        }
        for (const deployment of spec.deployments) {
          process.stdout.write(
            `${options.file}: ${deployment.metadata.name} (model "${servedName(deployment)}") is valid\n`,
          );
        }
      } catch (error) {
        if (error instanceof SpecError) throw new CliError(error.message, EXIT_USAGE);
        throw error;
      }
    });
}

/**
 * The local file a source names, or undefined when it is not a local file this machine can check:
 * remote sources, tiny://, folders (checkpoints converted on pull), and files inside a Kubernetes
 * volume (`kubernetes.modelVolumeClaim`).
 */
async function localModelFile(deployment: ModelDeployment, specFile: string): Promise<string | undefined> {
  if (deployment.spec.kubernetes.modelVolumeClaim !== undefined) return undefined;
  const { parseModelSource } = await import("../models/sources.js");
  let source: ReturnType<typeof parseModelSource>;
  try {
    source = parseModelSource(deployment.spec.model.source);
  } catch {
    return undefined; // the schema already vouched for the form; the puller names a bad one
  }
  if (source.kind !== "file") return undefined;
  const path = isAbsolute(source.path) ? source.path : resolve(dirname(resolve(specFile)), source.path);
  const info = await stat(path).catch(() => undefined);
  if (info?.isDirectory()) return undefined;
  return path;
}

/** Runs the model check on every local model file; problems are located at spec.model.source. */
async function checkLocalModels(specFile: string, deployments: ModelDeployment[]): Promise<void> {
  const { checkModelFile } = await import("../models/check.js");
  const { ModelError } = await import("../models/errors.js");
  const problems: SpecProblem[] = [];
  let lines: Array<number | undefined> | undefined;
  for (const [index, deployment] of deployments.entries()) {
    const path = await localModelFile(deployment, specFile);
    if (path === undefined) continue;
    try {
      await checkModelFile(path);
    } catch (error) {
      if (!(error instanceof ModelError)) throw error;
      lines ??= fieldLines(await readFile(specFile, "utf8"), ["spec", "model", "source"]);
      problems.push({
        file: specFile,
        line: lines[index],
        path: "spec.model.source",
        message: error.message,
      });
    }
  }
  if (problems.length > 0) throw new SpecError("BERTH_SPEC_INVALID", problems);
}
