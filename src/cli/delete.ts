// `berth delete -f FILE`: removes from the cluster every object Berth created for the spec's models
// (selected by the managed-by and instance labels), and nothing else.
import type { Command } from "commander";
import { CliError, EXIT_USAGE } from "./errors.js";
import { addKubeOptions, type KubeFlags, loadDeployments, withKubeClient } from "./kube.js";

interface DeleteFlags extends KubeFlags {
  dryRun?: string;
}

export function register(program: Command): void {
  addKubeOptions(
    program
      .command("delete")
      .description("delete a spec's models from Kubernetes (only the objects Berth created)"),
  )
    .option("--dry-run <mode>", "server: report what would be deleted, delete nothing")
    .action(async (flags: DeleteFlags) => {
      if (flags.dryRun !== undefined && flags.dryRun !== "server") {
        throw new CliError(`--dry-run supports only "server", not "${flags.dryRun}"`, EXIT_USAGE);
      }
      const deployments = await loadDeployments(flags.file);
      await withKubeClient(flags, async (client) => {
        const { deleteModels } = await import("../k8s/deploy.js");
        const deleted = await deleteModels(client, deployments, {
          dryRun: flags.dryRun === "server",
          ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
          ...(flags.json ? {} : { onProgress: (line: string) => process.stdout.write(`${line}\n`) }),
        });
        if (flags.json) process.stdout.write(`${JSON.stringify({ deleted }, null, 2)}\n`);
        else if (deleted.length === 0)
          process.stdout.write("nothing to delete: no objects of these models\n");
      });
    });
}
