// `berth apply -f FILE`: sends a changed spec to the running `berth up`; models whose replicas
// changed roll out one replica at a time, other changes apply in place.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import { adminCall } from "../control/admin-client.js";
import { applyResponseSchema } from "../control/admin-protocol.js";
import { isModelInputFailure } from "../models/errors.js";
import { parseSpecText, SpecError } from "../spec/index.js";
import { withAdmin } from "./admin.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";

export function register(program: Command): void {
  program
    .command("apply")
    .description("apply a spec to the running berth up (rolling update of changed models)")
    .requiredOption("-f, --file <path>", "spec file")
    .option("--json", "print the result as JSON")
    .action(async (options: { file: string; json?: boolean }) => {
      let text: string;
      try {
        text = await readFile(options.file, "utf8");
      } catch {
        throw new CliError(`${options.file}: no such file`, EXIT_USAGE);
      }
      // Checked here first so problems print with their line, before anything is sent.
      try {
        parseSpecText(text, options.file);
      } catch (error) {
        if (error instanceof SpecError) throw new CliError(error.message, EXIT_USAGE);
        throw error;
      }
      const result = await withAdmin((socket) =>
        adminCall(socket, applyResponseSchema, "POST", "/v1/apply", { file: resolve(options.file), text }),
      );
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      const parts = [
        ["created", result.created],
        ["updated", result.updated],
        ["unchanged", result.unchanged],
        ["removed", result.removed],
      ] as const;
      for (const [label, names] of parts) {
        if (names.length > 0) process.stdout.write(`${label}: ${names.join(", ")}\n`);
      }
      for (const warning of result.warnings ?? []) process.stderr.write(`berth: warning: ${warning}\n`);
      // A model whose file or source is bad was not started (a running one keeps its old replicas):
      // one line each, and the exit code says so (2: the spec's input, 1: the network or machine).
      const failed = result.failed ?? [];
      for (const failure of failed) {
        process.stderr.write(`berth: model ${failure.name} failed: ${failure.message}\n`);
      }
      if (failed.length > 0) {
        process.exitCode = failed.every((failure) => isModelInputFailure(failure.code))
          ? EXIT_USAGE
          : EXIT_FAILURE;
      }
    });
}
