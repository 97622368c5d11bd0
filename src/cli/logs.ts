// `berth logs MODEL [-f]`: the log lines of a model's replicas in the running `berth up`,
// each prefixed with its replica id; -f keeps following (new replicas too) until Ctrl-C.
import type { Command } from "commander";
import { adminLogs } from "../control/admin-client.js";
import { withAdmin } from "./admin.js";
import { CliError, EXIT_USAGE } from "./errors.js";

export function register(program: Command): void {
  program
    .command("logs")
    .description("log lines of a model's replicas (from the running berth up)")
    .argument("<model>", "model name (metadata.name or served name)")
    .option("-f, --follow", "keep printing new lines")
    .option("--tail <lines>", "lines from the end of each replica's log to start with", "100")
    .action(async (model: string, options: { follow?: boolean; tail: string }) => {
      const tail = Number(options.tail);
      if (!Number.isInteger(tail) || tail < 0)
        throw new CliError("--tail must be a whole number ≥ 0", EXIT_USAGE);
      const abort = new AbortController();
      const stop = (): void => abort.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      const query = `model=${encodeURIComponent(model)}&tail=${tail}&follow=${options.follow === true}`;
      try {
        await withAdmin((socket) =>
          adminLogs(
            socket,
            `/v1/logs?${query}`,
            ({ replicaId, line }) => process.stdout.write(`[${replicaId}] ${line}\n`),
            abort.signal,
          ),
        );
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
    });
}
