// `berth scale MODEL N`: a manual floor for a model in the running `berth up` (it replaces
// replicas.min; the autoscaler may still add replicas above it). `berth scale MODEL auto` clears it.
import type { Command } from "commander";
import { adminCall } from "../control/admin-client.js";
import { scaleResponseSchema } from "../control/admin-protocol.js";
import { withAdmin } from "./admin.js";
import { CliError, EXIT_USAGE } from "./errors.js";

export function register(program: Command): void {
  program
    .command("scale")
    .description('set a manual replica floor for a model ("auto" returns it to the spec)')
    .argument("<model>", "model name (metadata.name or served name)")
    .argument("<replicas>", "replicas to keep at least (0..1000), or auto")
    .option("--json", "print the result as JSON")
    .action(async (model: string, replicasText: string, options: { json?: boolean }) => {
      const replicas = replicasText === "auto" ? null : Number(replicasText);
      if (replicas !== null && (!Number.isInteger(replicas) || replicas < 0 || replicas > 1000)) {
        throw new CliError(
          `replicas must be a whole number 0..1000 or "auto", not "${replicasText}"`,
          EXIT_USAGE,
        );
      }
      const result = await withAdmin((socket) =>
        adminCall(socket, scaleResponseSchema, "POST", "/v1/scale", { model, replicas }),
      );
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      process.stdout.write(
        result.manualFloor === null
          ? `${result.model}: manual floor cleared; replicas follow the spec and the autoscaler\n`
          : `${result.model}: at least ${result.manualFloor} replicas (manual floor; berth scale ${result.model} auto clears it)\n`,
      );
    });
}
