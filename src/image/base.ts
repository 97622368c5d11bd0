// The base image `berth build` starts from: an OCI archive (`podman save --format oci-archive`), an
// OCI layout directory, or a registry. Resolves it to a config and layer blobs for linux/amd64, with
// every blob's digest checked before anything is built on it.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { type BlobRef, type BlobStore, openBlob } from "./blob-store.js";
import { ImageError } from "./errors.js";
import {
  type Descriptor,
  type ImageConfig,
  imageConfigSchema,
  indexSchema,
  isIndexMediaType,
  manifestSchema,
  ociLayerMediaType,
  parseJsonAs,
  selectPlatform,
} from "./oci.js";
import { type BaseSource, describeBaseSource, formatReference, manifestReference } from "./reference.js";
import type { RegistryClient } from "./registry.js";
import { indexTar } from "./tar.js";

export interface ResolvedBase {
  /** How the user named it, for messages. */
  description: string;
  manifestDigest: string;
  config: ImageConfig;
  /** Layers with OCI media types, in order. */
  layers: BlobRef[];
  /** The registry reference, for the org.opencontainers.image.base.name annotation (registry bases only). */
  registryName?: string;
}

const REF_NAME = "org.opencontainers.image.ref.name";

async function readRange(ref: BlobRef): Promise<Buffer> {
  const handle = await open(ref.path, "r");
  try {
    const bytes = Buffer.alloc(ref.size);
    const { bytesRead } = await handle.read(bytes, 0, ref.size, ref.start);
    return bytes.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function corrupt(
  description: string,
  what: string,
  expected: string,
  actual: string,
  remedy: string,
): ImageError {
  return new ImageError(
    "BERTH_IMAGE_BASE_CORRUPT",
    `base ${description} is corrupt: ${what} should have digest ${expected} but its bytes hash to ${actual}. ${remedy}`,
  );
}

/** Hashes a blob where it lies and throws BERTH_IMAGE_BASE_CORRUPT on a mismatch. */
export async function verifyBlob(ref: BlobRef, description: string, remedy: string): Promise<void> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of openBlob(ref) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  const actual = `sha256:${hash.digest("hex")}`;
  if (actual !== ref.digest || size !== ref.size) {
    throw corrupt(
      description,
      `layer ${ref.digest} (${ref.size} bytes, read ${size})`,
      ref.digest,
      actual,
      remedy,
    );
  }
}

/** Read access to the blobs of an OCI layout, in a directory or inside an archive. */
interface Layout {
  description: string;
  remedy: string;
  indexJson(): Promise<Buffer>;
  blob(descriptor: Descriptor): BlobRef;
}

async function archiveLayout(path: string, description: string): Promise<Layout> {
  const remedy = `Write the archive again (e.g. \`podman save --format oci-archive -o ${path} IMAGE\` or scripts/image/make-base.sh).`;
  const entries = await indexTar(path, description);
  const locate = (name: string) => {
    const entry = entries.get(name);
    if (entry?.type !== "file") return undefined;
    return entry;
  };
  return {
    description,
    remedy,
    async indexJson() {
      const entry = locate("index.json");
      if (!entry) {
        throw new ImageError(
          "BERTH_IMAGE_BASE_NOT_FOUND",
          `${description} is not an OCI archive (no index.json); use \`podman save --format oci-archive\`, not docker-archive`,
        );
      }
      return readRange({ mediaType: "", digest: "", size: entry.size, path, start: entry.offset });
    },
    blob(descriptor) {
      const name = `blobs/sha256/${descriptor.digest.slice("sha256:".length)}`;
      const entry = locate(name);
      if (!entry)
        throw corrupt(
          description,
          `blob ${descriptor.digest}`,
          descriptor.digest,
          "(missing from the archive)",
          remedy,
        );
      if (entry.size !== descriptor.size) {
        throw new ImageError(
          "BERTH_IMAGE_BASE_CORRUPT",
          `base ${description} is corrupt: blob ${descriptor.digest} is ${entry.size} bytes, its descriptor says ${descriptor.size}. ${remedy}`,
        );
      }
      return {
        mediaType: descriptor.mediaType,
        digest: descriptor.digest,
        size: entry.size,
        path,
        start: entry.offset,
      };
    },
  };
}

function directoryLayout(path: string, description: string): Layout {
  const remedy = `Copy the image into the layout again (e.g. \`skopeo copy ... oci:${path}:TAG\`).`;
  return {
    description,
    remedy,
    async indexJson() {
      try {
        return await readFile(join(path, "index.json"));
      } catch (error) {
        throw new ImageError(
          "BERTH_IMAGE_BASE_NOT_FOUND",
          `${description} is not an OCI layout (no index.json)`,
          { cause: error },
        );
      }
    },
    blob(descriptor) {
      const file = join(path, "blobs", "sha256", descriptor.digest.slice("sha256:".length));
      if (!existsSync(file))
        throw corrupt(
          description,
          `blob ${descriptor.digest}`,
          descriptor.digest,
          "(missing from the layout)",
          remedy,
        );
      return {
        mediaType: descriptor.mediaType,
        digest: descriptor.digest,
        size: descriptor.size,
        path: file,
        start: 0,
      };
    },
  };
}

async function readVerifiedJson(layout: Layout, descriptor: Descriptor, what: string): Promise<Buffer> {
  const bytes = await readRange(layout.blob(descriptor));
  const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  if (actual !== descriptor.digest)
    throw corrupt(layout.description, what, descriptor.digest, actual, layout.remedy);
  return bytes;
}

function pickByRefName(
  manifests: Descriptor[],
  refName: string | undefined,
  description: string,
): Descriptor {
  const names = manifests
    .map((d) => d.annotations?.[REF_NAME])
    .filter((name): name is string => name !== undefined);
  if (refName !== undefined) {
    const match =
      manifests.find((d) => d.annotations?.[REF_NAME] === refName) ??
      manifests.find((d) => d.annotations?.[REF_NAME]?.endsWith(`:${refName}`));
    if (match) return match;
    throw new ImageError(
      "BERTH_IMAGE_BASE_NOT_FOUND",
      `${description} has no image named "${refName}" (it has: ${names.join(", ") || "no named images"})`,
    );
  }
  if (manifests.length === 1) return manifests[0] as Descriptor;
  if (manifests.length === 0)
    throw new ImageError("BERTH_IMAGE_BASE_NOT_FOUND", `${description} holds no image`);
  throw new ImageError(
    "BERTH_IMAGE_BASE_NOT_FOUND",
    `${description} holds ${manifests.length} images; name one as ${description}:NAME (names: ${names.join(", ")})`,
  );
}

async function resolveFromLayout(layout: Layout, refName: string | undefined): Promise<ResolvedBase> {
  const index = parseJsonAs(
    indexSchema,
    await layout.indexJson(),
    `index.json of ${layout.description}`,
    "BERTH_IMAGE_BASE_CORRUPT",
  );
  let descriptor = pickByRefName(index.manifests, refName, layout.description);
  // An index inside the layout (a multi-platform image): pick linux/amd64.
  for (let depth = 0; isIndexMediaType(descriptor.mediaType) && depth < 4; depth++) {
    const nested = parseJsonAs(
      indexSchema,
      await readVerifiedJson(layout, descriptor, `index ${descriptor.digest}`),
      `index ${descriptor.digest} of ${layout.description}`,
      "BERTH_IMAGE_BASE_CORRUPT",
    );
    descriptor = selectPlatform(nested, layout.description);
  }
  const manifest = parseJsonAs(
    manifestSchema,
    await readVerifiedJson(layout, descriptor, `manifest ${descriptor.digest}`),
    `manifest ${descriptor.digest} of ${layout.description}`,
    "BERTH_IMAGE_BASE_CORRUPT",
  );
  const config = parseJsonAs(
    imageConfigSchema,
    await readVerifiedJson(layout, manifest.config, `config ${manifest.config.digest}`),
    `config of ${layout.description}`,
    "BERTH_IMAGE_BASE_CORRUPT",
  );
  checkPlatform(config, layout.description);
  const layers = manifest.layers.map((layer) => ({
    ...layout.blob(layer),
    mediaType: ociLayerMediaType(layer.mediaType, layout.description),
  }));
  for (const layer of layers) await verifyBlob(layer, layout.description, layout.remedy);
  return { description: layout.description, manifestDigest: descriptor.digest, config, layers };
}

function checkPlatform(config: ImageConfig, description: string): void {
  if (config.os !== "linux" || config.architecture !== "amd64") {
    throw new ImageError(
      "BERTH_IMAGE_PLATFORM_NOT_FOUND",
      `${description} is a ${config.os}/${config.architecture} image; berth build makes linux/amd64 images`,
    );
  }
}

async function resolveFromRegistry(
  source: Extract<BaseSource, { kind: "registry" }>,
  client: RegistryClient,
  store: BlobStore,
  onProgress?: (name: string, done: number, total: number) => void,
): Promise<ResolvedBase> {
  const { reference } = source;
  const description = formatReference(reference);
  const notFound = () =>
    new ImageError(
      "BERTH_IMAGE_BASE_NOT_FOUND",
      `base image ${description} does not exist in registry ${reference.registry}; check the name and tag, ` +
        "or build a local base (scripts/image/make-base.sh) and pass --base oci-archive:FILE",
    );
  let fetched = await client.getManifest(reference.repository, manifestReference(reference));
  if (!fetched) throw notFound();
  let mediaType = fetched.mediaType;
  let bytes = fetched.bytes;
  let digest = fetched.digest;
  for (let depth = 0; depth < 4; depth++) {
    const probe = JSON.parse(bytes.toString("utf8")) as { mediaType?: string; manifests?: unknown };
    if (!isIndexMediaType(mediaType || probe.mediaType) && probe.manifests === undefined) break;
    const index = parseJsonAs(indexSchema, bytes, `index of ${description}`, "BERTH_IMAGE_REGISTRY");
    const chosen = selectPlatform(index, description);
    fetched = await client.getManifest(reference.repository, chosen.digest);
    if (!fetched) throw notFound();
    ({ mediaType, bytes, digest } = fetched);
  }
  const manifest = parseJsonAs(manifestSchema, bytes, `manifest of ${description}`, "BERTH_IMAGE_REGISTRY");
  const configPath = await client.pullBlob(
    reference.repository,
    manifest.config.digest,
    manifest.config.size,
    store,
  );
  const config = parseJsonAs(
    imageConfigSchema,
    await readFile(configPath),
    `config of ${description}`,
    "BERTH_IMAGE_BASE_CORRUPT",
  );
  checkPlatform(config, description);
  const layers: BlobRef[] = [];
  for (const [position, layer] of manifest.layers.entries()) {
    const name = `base layer ${position + 1}/${manifest.layers.length}`;
    await client.pullBlob(reference.repository, layer.digest, layer.size, store, (done) =>
      onProgress?.(name, done, layer.size),
    );
    layers.push(
      store.blobRef({
        digest: layer.digest,
        size: layer.size,
        mediaType: ociLayerMediaType(layer.mediaType, description),
      }),
    );
  }
  return { description, manifestDigest: digest, config, layers, registryName: description };
}

export async function resolveBase(
  source: BaseSource,
  dependencies: {
    registryClient: (registry: string) => RegistryClient;
    store: BlobStore;
    onProgress?: (name: string, done: number, total: number) => void;
  },
): Promise<ResolvedBase> {
  const description = describeBaseSource(source);
  if (source.kind === "registry") {
    return resolveFromRegistry(
      source,
      dependencies.registryClient(source.reference.registry),
      dependencies.store,
      dependencies.onProgress,
    );
  }
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(source.path);
  } catch (error) {
    throw new ImageError(
      "BERTH_IMAGE_BASE_NOT_FOUND",
      `base ${description}: ${source.path} does not exist. Make one with \`podman save --format oci-archive -o FILE IMAGE\` ` +
        "or scripts/image/make-base.sh (a local Node 20 base)",
      { cause: error },
    );
  }
  if (source.kind === "oci-archive") {
    if (!info.isFile())
      throw new ImageError("BERTH_IMAGE_BASE_NOT_FOUND", `base ${description}: ${source.path} is not a file`);
    return resolveFromLayout(await archiveLayout(source.path, description), source.refName);
  }
  if (!info.isDirectory())
    throw new ImageError(
      "BERTH_IMAGE_BASE_NOT_FOUND",
      `base ${description}: ${source.path} is not a directory`,
    );
  return resolveFromLayout(directoryLayout(source.path, description), source.refName);
}
