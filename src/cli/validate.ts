// `berth validate -f FILE`: checks a spec without running anything; problems go to stderr
// as "FILE:LINE field.path: message", one a line, exit code 2.
import type { Command } from "commander";
import { loadSpecFile, SpecError, servedName } from "../spec/index.js";
import { CliError, EXIT_USAGE } from "./errors.js";

export function register(program: Command): void {
  program
    .command("validate")
    .description("check a ModelDeployment spec file and print its problems with line and field")
    .requiredOption("-f, --file <path>", "spec file (YAML, one or more documents)")
    .option("--json", "print the validated specs, with defaults applied, as JSON")
    .action(async (options: { file: string; json?: boolean }) => {
      try {
        const spec = await loadSpecFile(options.file);
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
