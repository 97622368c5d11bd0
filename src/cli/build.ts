// `berth build`: writes the model server's container image without a daemon (src/image) as an OCI
// archive and/or pushes it; prints the manifest digest on stdout, progress and a summary on stderr.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Command, InvalidArgumentError, Option } from "commander";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";

interface BuildCliOptions {
  file?: string;
  tag?: string;
  base?: string;
  ociArchive?: string;
  push?: boolean;
  model?: string;
  insecureRegistry?: boolean;
  variant: "cpu" | "cuda" | "vulkan";
  format: "oci" | "docker";
  port?: number;
  chunkSize?: number;
  revision?: string;
  project?: string;
  json?: boolean;
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new InvalidArgumentError("must be a positive integer");
  return parsed;
}

/** The Berth installation this command runs from (dist/cli/build.js → the package root). */
function installedProjectDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function register(program: Command): void {
  program
    .command("build")
    .description("build the model server's container image (OCI) without a daemon; write it and/or push it")
    .option("-f, --file <path>", "spec file: its port, and spec.kubernetes.image as the default --tag")
    .option("-t, --tag <ref>", "image reference to write, e.g. 127.0.0.1:5000/berth:0.1.0")
    .option(
      "--base <source>",
      "base image: a registry reference (default node:20-bookworm-slim), oci-archive:FILE[:REF] or oci:DIR[:REF]",
    )
    .option(
      "--oci-archive <file>",
      "write the image as an OCI archive (podman load -i FILE, skopeo oci-archive:FILE)",
    )
    .option("--push", "push the image to the registry named by --tag")
    .option(
      "--model <source>",
      "bake a model into the image as /models/model.gguf, its own layer: a path or any source (hf://, https://, s3://), pulled first",
    )
    .option("--insecure-registry", "talk plain HTTP to the registries (a local registry without TLS)")
    .addOption(
      new Option("--variant <name>", "llama.cpp build to carry")
        .choices(["cpu", "cuda", "vulkan"])
        .default("cpu"),
    )
    .addOption(
      new Option("--format <format>", "manifest format (docker: podman and docker honour the HEALTHCHECK)")
        .choices(["oci", "docker"])
        .default("oci"),
    )
    .option(
      "--port <port>",
      "port the server listens on in the container (default: the spec's, else 9000)",
      positiveInteger,
    )
    .option("--chunk-size <bytes>", "upload blobs larger than this in chunks of this size", positiveInteger)
    .option("--revision <rev>", "org.opencontainers.image.revision label, e.g. the git commit")
    .option("--project <dir>", "Berth project to package (default: this installation)")
    .option("--json", "print the build result as JSON")
    .addHelpText(
      "after",
      "\nCredentials: BERTH_REGISTRY_USERNAME and BERTH_REGISTRY_PASSWORD, else podman's auth.json or " +
        "~/.docker/config.json.\nTimestamps come from SOURCE_DATE_EPOCH (default 0): the same inputs give the same digest.",
    )
    .action(async (options: BuildCliOptions) => {
      const { buildImage } = await import("../image/build.js");
      const { ImageError } = await import("../image/errors.js");
      const { createProgressPrinter } = await import("../image/progress.js");
      const { recordLastBuild } = await import("../image/last-build.js");
      const { berthHome } = await import("../util/home.js");

      let port = options.port;
      let tag = options.tag;
      if (options.file) {
        const { loadSpecFile, SpecError } = await import("../spec/index.js");
        try {
          const spec = await loadSpecFile(options.file);
          const deployment = spec.deployments[0];
          if (spec.deployments.length !== 1 || !deployment) {
            throw new CliError(
              `${options.file} holds ${spec.deployments.length} deployments; berth build takes one`,
              EXIT_USAGE,
            );
          }
          port ??= deployment.spec.port;
          tag ??= deployment.spec.kubernetes.image;
        } catch (error) {
          if (error instanceof SpecError) throw new CliError(error.message, EXIT_USAGE);
          throw error;
        }
      }
      if (!tag) throw new CliError("--tag is required (or -f with spec.kubernetes.image)", EXIT_USAGE);

      // Through the model store: pulled (with progress) and model-checked before it is baked in.
      let modelPath: string | undefined;
      if (options.model) {
        const { pullForCli } = await import("./pull-progress.js");
        modelPath = (await pullForCli(options.model)).path;
      }
      const write = (line: string) => process.stderr.write(line);
      try {
        const result = await buildImage({
          projectDir: options.project ? resolve(options.project) : installedProjectDir(),
          tag,
          ...(options.base ? { base: options.base } : {}),
          variant: options.variant,
          format: options.format,
          ...(modelPath ? { modelPath } : {}),
          ...(options.ociArchive ? { ociArchive: resolve(options.ociArchive) } : {}),
          push: options.push ?? false,
          insecureRegistry: options.insecureRegistry ?? false,
          ...(port ? { port } : {}),
          ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}),
          ...(options.revision ? { revision: options.revision } : {}),
          cacheDir: join(berthHome(), "image"),
          onProgress: createProgressPrinter(write),
        });
        await recordLastBuild(result);
        write(
          `berth build: base ${result.base.description} (${result.base.manifestDigest}, ${result.base.layers} layers)\n`,
        );
        for (const layer of result.layers) {
          write(
            `berth build: layer ${layer.name} ${layer.digest} ${megabytes(layer.size)} ` +
              `(${megabytes(layer.uncompressedSize)} unpacked)${layer.cached ? " cached" : ""}\n`,
          );
        }
        write(
          `berth build: image ${result.reference} ${result.manifestDigest}, ${megabytes(result.compressedSize)} compressed\n`,
        );
        if (result.ociArchive) write(`berth build: wrote ${result.ociArchive}\n`);
        if (result.push) {
          write(
            `berth build: pushed ${result.push.registry}/${result.push.repository}:${result.push.tag}: ` +
              `${result.push.blobsUploaded} blobs uploaded (${megabytes(result.push.bytesUploaded)}), ` +
              `${result.push.blobsSkipped} already there\n`,
          );
        }
        process.stdout.write(
          options.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.manifestDigest}\n`,
        );
      } catch (error) {
        if (error instanceof ImageError) {
          throw new CliError(
            `${error.code}: ${error.message}`,
            error.isUsageError ? EXIT_USAGE : EXIT_FAILURE,
          );
        }
        throw error;
      }
    });
}
