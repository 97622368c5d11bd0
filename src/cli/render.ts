// `berth render -f FILE [--format yaml|json] [--helm DIR] [--image REF] [--namespace NS]`: the Kubernetes
// objects of a spec on stdout (multi-document YAML or a JSON List), or a Helm chart written to DIR.
import { mkdir, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import type { Command } from "commander";
import { stringify } from "yaml";
import { helmChart } from "../k8s/helm.js";
import { renderAll, renderDeployment } from "../k8s/render.js";
import { loadSpecFile, SpecError } from "../spec/index.js";
import { CliError, EXIT_USAGE } from "./errors.js";

interface RenderCliOptions {
  file: string;
  format: string;
  helm?: string;
  image?: string;
  namespace?: string;
}

export function register(program: Command): void {
  program
    .command("render")
    .description("print the Kubernetes objects of a spec (or write them as a Helm chart)")
    .requiredOption("-f, --file <path>", "spec file (YAML, one or more documents)")
    .option("--format <format>", "yaml (multi-document) or json (a v1 List)", "yaml")
    .option("--helm <dir>", "write a Helm chart to DIR instead of printing")
    .option("--image <ref>", "container image of the model server (overrides spec.kubernetes.image)")
    .option("-n, --namespace <namespace>", "namespace of every object (overrides the spec)")
    .action(async (options: RenderCliOptions) => {
      if (options.format !== "yaml" && options.format !== "json") {
        throw new CliError(`--format must be yaml or json, not "${options.format}"`, EXIT_USAGE);
      }
      let deployments: Awaited<ReturnType<typeof loadSpecFile>>["deployments"];
      try {
        deployments = (await loadSpecFile(options.file)).deployments;
      } catch (error) {
        if (error instanceof SpecError) throw new CliError(error.message, EXIT_USAGE);
        throw error;
      }
      const renderOptions = {
        ...(options.image === undefined ? {} : { image: options.image }),
        ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
      };
      if (options.helm) {
        const models = deployments.map((deployment) => ({
          deployment,
          // Helm decides the namespace at install time (--namespace).
          objects: renderDeployment(deployment, renderOptions).map((object) => {
            const { namespace: _dropped, ...metadata } = object.metadata;
            return { ...object, metadata };
          }),
        }));
        const chartName =
          deployments.length === 1
            ? (deployments[0]?.metadata.name ?? "berth")
            : basename(options.file, extname(options.file)).replace(/[^a-z0-9-]/g, "-");
        const files = helmChart(chartName, models);
        for (const [path, text] of files) {
          const target = join(options.helm, path);
          await mkdir(dirname(target), { recursive: true });
          await writeFile(target, text);
        }
        process.stderr.write(`wrote Helm chart "${chartName}" (${files.size} files) to ${options.helm}\n`);
        return;
      }
      const objects = renderAll(deployments, renderOptions);
      if (options.format === "json") {
        process.stdout.write(
          `${JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(
        objects
          .map((object) => stringify(object, { lineWidth: 0, aliasDuplicateObjects: false }))
          .join("---\n"),
      );
    });
}
