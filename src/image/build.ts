// `berth build` without a daemon: base image + Berth's layers (dependencies, application, optional
// model) + config and manifest, written as an OCI archive and/or pushed to a registry. Same inputs,
// same SOURCE_DATE_EPOCH → the same bytes and digest.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { writeOciArchive } from "./archive.js";
import { resolveBase } from "./base.js";
import { type BlobRef, BlobStore } from "./blob-store.js";
import { resolveCredentials } from "./credentials.js";
import { ImageError } from "./errors.js";
import {
  type AddedLayer,
  buildImageConfig,
  buildLayoutIndex,
  buildManifest,
  descriptorOf,
  rfc3339,
} from "./image-config.js";
import { type BuiltLayer, buildLayer, DEFAULT_GZIP_LEVEL, type ProgressReporter } from "./layer.js";
import {
  canonicalJson,
  FORMAT_MEDIA_TYPES,
  type ImageFormat,
  layerMediaTypeFor,
  sha256Digest,
} from "./oci.js";
import type { LlamaVariant } from "./prune.js";
import {
  type BaseSource,
  formatReference,
  type ImageReference,
  parseBaseSource,
  parseReference,
} from "./reference.js";
import { RegistryClient, type UploadStats } from "./registry.js";
import { applicationLayer, dependenciesLayer, IMAGE_MODEL_FILE, IMAGE_UID, modelLayer } from "./sources.js";

export const DEFAULT_BASE_IMAGE = "node:20-bookworm-slim";
export const DEFAULT_PORT = 9000;
/** Blobs larger than this are uploaded in PATCH chunks of this size; smaller ones in one PUT. */
export const DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024;

export interface BuildImageOptions {
  projectDir: string;
  /** Where the image goes: `registry/repository:tag`. */
  tag: string;
  /** `oci-archive:FILE[:REF]`, `oci:DIR[:REF]` or a registry reference. */
  base?: string;
  variant?: LlamaVariant;
  /** Manifest format: oci (default) or docker (podman and docker then honour the HEALTHCHECK). */
  format?: ImageFormat;
  /** A GGUF file baked in as /models/model.gguf. */
  modelPath?: string;
  ociArchive?: string;
  push?: boolean;
  /** Plain HTTP for the registries involved (local registries without TLS). */
  insecureRegistry?: boolean;
  /** Seconds since the epoch for every timestamp in the image; default SOURCE_DATE_EPOCH, else 0. */
  sourceDateEpoch?: number;
  port?: number;
  chunkSize?: number;
  gzipLevel?: number;
  /** org.opencontainers.image.revision, e.g. the git commit. */
  revision?: string;
  /** The layer cache (BERTH_HOME/image). */
  cacheDir: string;
  /** Where credentials come from (BERTH_REGISTRY_USERNAME/PASSWORD, auth files). */
  env?: NodeJS.ProcessEnv;
  onProgress?: ProgressReporter;
}

export interface BuildImageResult {
  reference: string;
  manifestDigest: string;
  configDigest: string;
  base: { description: string; manifestDigest: string; layers: number };
  layers: Array<{ name: string; digest: string; size: number; uncompressedSize: number; cached: boolean }>;
  /** Compressed bytes of all layers and the config: what a pull downloads. */
  compressedSize: number;
  ociArchive?: string;
  push?: { registry: string; repository: string; tag: string; digest: string } & UploadStats;
}

/** SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/), else 0. */
export function sourceDateEpochFrom(env: NodeJS.ProcessEnv): number {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === "") return 0;
  if (!/^\d+$/.test(raw)) {
    throw new ImageError(
      "BERTH_IMAGE_INPUT_INVALID",
      `SOURCE_DATE_EPOCH must be whole seconds since 1970, not "${raw}"`,
    );
  }
  return Number(raw);
}

async function readPackageJson(
  projectDir: string,
): Promise<{ version: string; license: string; description: string }> {
  try {
    const json = JSON.parse(await readFile(join(projectDir, "package.json"), "utf8")) as Record<
      string,
      unknown
    >;
    return {
      version: typeof json.version === "string" ? json.version : "0.0.0",
      license: typeof json.license === "string" ? json.license : "",
      description: typeof json.description === "string" ? json.description : "",
    };
  } catch (error) {
    throw new ImageError(
      "BERTH_IMAGE_INPUT_INVALID",
      `${projectDir} has no readable package.json; run berth build from the project`,
      {
        cause: error,
      },
    );
  }
}

function healthcheckCommand(port: number): string[] {
  // Slim Node images have no curl: node asks /healthz itself.
  return [
    "node",
    "-e",
    `fetch('http://127.0.0.1:${port}/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
  ];
}

export async function buildImage(options: BuildImageOptions): Promise<BuildImageResult> {
  const env = options.env ?? process.env;
  const target: ImageReference = parseReference(options.tag);
  if (target.digest !== undefined) {
    throw new ImageError(
      "BERTH_IMAGE_REFERENCE_INVALID",
      `--tag ${options.tag} names a digest; give a tag (the digest is computed)`,
    );
  }
  const baseSource: BaseSource = parseBaseSource(options.base ?? DEFAULT_BASE_IMAGE, existsSync);
  const variant = options.variant ?? "cpu";
  const epoch = options.sourceDateEpoch ?? sourceDateEpochFrom(env);
  const port = options.port ?? DEFAULT_PORT;
  const gzipLevel = options.gzipLevel ?? DEFAULT_GZIP_LEVEL;
  const format = options.format ?? "oci";
  const mediaTypes = FORMAT_MEDIA_TYPES[format];
  const store = new BlobStore(options.cacheDir);
  const clients = new Map<string, RegistryClient>();
  const registryClient = (registry: string): RegistryClient => {
    let client = clients.get(registry);
    if (!client) {
      const credentials = resolveCredentials(registry, env);
      client = new RegistryClient({
        registry,
        insecure: options.insecureRegistry ?? false,
        ...(credentials ? { credentials } : {}),
      });
      clients.set(registry, client);
    }
    return client;
  };
  const progress = options.onProgress;

  const packageJson = await readPackageJson(options.projectDir);
  const base = await resolveBase(baseSource, {
    registryClient,
    store,
    ...(progress ? { onProgress: progress } : {}),
  });

  const normalize = { mtime: epoch };
  const specs = [
    await dependenciesLayer(options.projectDir, variant, normalize),
    await applicationLayer(options.projectDir, normalize),
  ];
  if (options.modelPath) specs.push(await modelLayer(options.modelPath, normalize));
  const built: BuiltLayer[] = [];
  for (const spec of specs) {
    built.push(await buildLayer(spec, store, { gzipLevel, ...(progress ? { onProgress: progress } : {}) }));
  }

  const created = rfc3339(epoch);
  const labels: Record<string, string> = {
    "org.opencontainers.image.title": "berth",
    "org.opencontainers.image.description": packageJson.description || "Berth model server",
    "org.opencontainers.image.version": packageJson.version,
    "org.opencontainers.image.created": created,
    "org.opencontainers.image.base.digest": base.manifestDigest,
    "dev.berth.llama-variant": variant,
  };
  if (packageJson.license) labels["org.opencontainers.image.licenses"] = packageJson.license;
  if (options.revision) labels["org.opencontainers.image.revision"] = options.revision;
  if (base.registryName) labels["org.opencontainers.image.base.name"] = base.registryName;
  if (options.modelPath) labels["dev.berth.model"] = IMAGE_MODEL_FILE;

  const added: AddedLayer[] = built.map((layer) => ({ diffId: layer.diffId, createdBy: layer.createdBy }));
  const configBytes = canonicalJson(
    buildImageConfig(base.config, added, {
      created,
      user: `${IMAGE_UID}:${IMAGE_UID}`,
      workingDir: "/app",
      entrypoint: [
        "node",
        "/app/bin/berth.js",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        String(port),
        "--model",
        `/${IMAGE_MODEL_FILE}`,
      ],
      exposedPort: port,
      // UV_THREADPOOL_SIZE: the engine's setting (src/engine/process.ts); with it in the image,
      // `berth serve` runs as PID 1 itself instead of relaunching a child to get it.
      env: {
        NODE_ENV: "production",
        HOME: "/home/berth",
        BERTH_HOME: "/home/berth/.cache/berth",
        UV_THREADPOOL_SIZE: "1",
      },
      labels,
      healthcheck: {
        test: healthcheckCommand(port),
        intervalSeconds: 10,
        timeoutSeconds: 3,
        startPeriodSeconds: 60,
        retries: 3,
      },
    }),
  );
  const configDescriptor = descriptorOf(mediaTypes.config, sha256Digest(configBytes), configBytes.length);
  const layerRefs: BlobRef[] = [...base.layers, ...built.map((layer) => store.blobRef(layer))].map((ref) => ({
    ...ref,
    mediaType: layerMediaTypeFor(format, ref.mediaType),
  }));
  const annotations: Record<string, string> = { "org.opencontainers.image.base.digest": base.manifestDigest };
  if (base.registryName) annotations["org.opencontainers.image.base.name"] = base.registryName;
  const manifestBytes = canonicalJson(
    buildManifest(
      mediaTypes.manifest,
      configDescriptor,
      layerRefs.map((ref) => descriptorOf(ref.mediaType, ref.digest, ref.size)),
      annotations,
    ),
  );
  const manifestDescriptor = descriptorOf(
    mediaTypes.manifest,
    sha256Digest(manifestBytes),
    manifestBytes.length,
  );
  const reference = formatReference(target);

  const result: BuildImageResult = {
    reference,
    manifestDigest: manifestDescriptor.digest,
    configDigest: configDescriptor.digest,
    base: { description: base.description, manifestDigest: base.manifestDigest, layers: base.layers.length },
    layers: built.map((layer) => ({
      name: layer.name,
      digest: layer.digest,
      size: layer.size,
      uncompressedSize: layer.uncompressedSize,
      cached: layer.cached,
    })),
    compressedSize: layerRefs.reduce((sum, ref) => sum + ref.size, configBytes.length),
  };

  if (options.ociArchive) {
    const indexJson = canonicalJson(buildLayoutIndex(manifestDescriptor, reference));
    await writeOciArchive(
      options.ociArchive,
      [
        ...layerRefs,
        { digest: configDescriptor.digest, bytes: configBytes },
        { digest: manifestDescriptor.digest, bytes: manifestBytes },
      ],
      indexJson,
      epoch,
    );
    result.ociArchive = options.ociArchive;
  }

  if (options.push) {
    const client = registryClient(target.registry);
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    for (const [position, ref] of layerRefs.entries()) {
      const name = `upload layer ${position + 1}/${layerRefs.length}`;
      await client.pushBlob(
        target.repository,
        ref,
        chunkSize,
        progress ? (done) => progress(name, done, ref.size) : undefined,
      );
    }
    const configTemp = await store.tempPath();
    await writeFile(configTemp, configBytes);
    const configPath = await store.commit(configTemp, configDescriptor.digest);
    await client.pushBlob(
      target.repository,
      {
        mediaType: mediaTypes.config,
        digest: configDescriptor.digest,
        size: configBytes.length,
        path: configPath,
        start: 0,
      },
      chunkSize,
    );
    const tag = target.tag ?? "latest";
    const digest = await client.putManifest(
      target.repository,
      tag,
      manifestBytes,
      mediaTypes.manifest,
      manifestDescriptor.digest,
    );
    result.push = { registry: target.registry, repository: target.repository, tag, digest, ...client.stats };
  }
  return result;
}
