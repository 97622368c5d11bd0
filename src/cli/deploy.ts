// `berth deploy -f FILE`: server-side apply of the rendered objects to the kube context, then wait for
// the rollout. Object results go to stdout, rollout progress to stderr; --dry-run=server changes nothing.
import type { Command } from "commander";
import { parseDuration } from "../spec/units.js";
import { CliError, EXIT_USAGE } from "./errors.js";
import { addKubeOptions, type KubeFlags, loadDeployments, withKubeClient } from "./kube.js";

interface DeployFlags extends KubeFlags {
  dryRun?: string;
  wait: boolean;
  prune?: boolean;
  timeout: string;
  image?: string;
  forceConflicts?: boolean;
}

export function register(program: Command): void {
  addKubeOptions(
    program
      .command("deploy")
      .description(
        "apply a spec to Kubernetes (server-side apply, field manager berth) and wait for the rollout",
      ),
  )
    .option(
      "--dry-run <mode>",
      "server: the API server validates and computes every change, and persists nothing",
    )
    .option("--no-wait", "return once applied, without waiting for the rollout")
    .option(
      "--prune",
      "delete this model's objects that the spec no longer renders (only objects Berth created)",
    )
    .option("--timeout <duration>", "how long to wait for the rollout", "5m")
    .option("--image <ref>", "container image of the model server (overrides spec.kubernetes.image)")
    .option("--force-conflicts", "take over fields another field manager owns (default: report them)")
    .action(async (flags: DeployFlags) => {
      if (flags.dryRun !== undefined && flags.dryRun !== "server") {
        throw new CliError(`--dry-run supports only "server", not "${flags.dryRun}"`, EXIT_USAGE);
      }
      const timeoutMs = parseDuration(flags.timeout);
      if (timeoutMs === undefined)
        throw new CliError(`--timeout: not a duration: ${flags.timeout}`, EXIT_USAGE);
      const deployments = await loadDeployments(flags.file);
      const dryRun = flags.dryRun === "server";
      await withKubeClient(flags, async (client) => {
        const { deployModels } = await import("../k8s/deploy.js");
        const print = (line: string) => {
          if (!flags.json) process.stdout.write(`${line}\n`);
        };
        const result = await deployModels(client, deployments, {
          dryRun,
          wait: flags.wait,
          timeoutMs,
          ...(flags.prune ? { prune: true } : {}),
          ...(flags.forceConflicts ? { forceConflicts: true } : {}),
          ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
          ...(flags.image === undefined ? {} : { image: flags.image }),
          onProgress: print,
          onRollout: (line) => process.stderr.write(`${line}\n`),
        });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ ...result, requests: client.requestCount }, null, 2)}\n`);
          return;
        }
        if (dryRun) {
          const changed = result.objects.filter((object) => object.action !== "unchanged").length;
          print(`dry run: ${changed} of ${result.objects.length} objects would change; nothing was written`);
        } else if (flags.wait && result.rollouts.length > 0) {
          print(
            `rolled out: ${result.rollouts.map((rollout) => `${rollout.namespace}/${rollout.name}`).join(", ")}`,
          );
        }
      });
    });
}
