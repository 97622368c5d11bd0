// OCI image format: media types, zod schemas for manifests, indexes and configs read from outside,
// platform selection and canonical JSON for what Berth writes. Pure.
import { createHash } from "node:crypto";
import { z } from "zod";
import { ImageError } from "./errors.js";
import { DIGEST } from "./reference.js";

export const MEDIA_TYPES = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerTar: "application/vnd.oci.image.layer.v1.tar",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayer: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.dockerManifest,
].join(", ");

export const descriptorSchema = z.looseObject({
  mediaType: z.string(),
  digest: z.string().regex(DIGEST, "only sha256 digests are supported"),
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: z
    .looseObject({ architecture: z.string(), os: z.string(), variant: z.string().optional() })
    .optional(),
});
export type Descriptor = z.output<typeof descriptorSchema>;

export const manifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});
export type ImageManifest = z.output<typeof manifestSchema>;

export const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
});
export type ImageIndex = z.output<typeof indexSchema>;

const healthcheckSchema = z.looseObject({
  Test: z.array(z.string()).optional(),
  Interval: z.number().optional(),
  Timeout: z.number().optional(),
  StartPeriod: z.number().optional(),
  Retries: z.number().optional(),
});

export const containerConfigSchema = z.looseObject({
  User: z.string().optional(),
  Env: z.array(z.string()).nullish(),
  Entrypoint: z.array(z.string()).nullish(),
  Cmd: z.array(z.string()).nullish(),
  WorkingDir: z.string().optional(),
  ExposedPorts: z.record(z.string(), z.object({})).nullish(),
  Labels: z.record(z.string(), z.string()).nullish(),
  Healthcheck: healthcheckSchema.optional(),
  StopSignal: z.string().optional(),
});

export const imageConfigSchema = z.looseObject({
  created: z.string().optional(),
  architecture: z.string(),
  os: z.string(),
  config: containerConfigSchema.optional(),
  rootfs: z.object({ type: z.literal("layers"), diff_ids: z.array(z.string().regex(DIGEST)) }),
  history: z
    .array(
      z.looseObject({
        created: z.string().optional(),
        created_by: z.string().optional(),
        comment: z.string().optional(),
        empty_layer: z.boolean().optional(),
      }),
    )
    .optional(),
});
export type ImageConfig = z.output<typeof imageConfigSchema>;

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MEDIA_TYPES.ociIndex || mediaType === MEDIA_TYPES.dockerManifestList;
}

/** Picks the linux/amd64 manifest of an index; `where` names the base for the error. */
export function selectPlatform(index: ImageIndex, where: string): Descriptor {
  const match = index.manifests.find(
    (descriptor) => descriptor.platform?.os === "linux" && descriptor.platform.architecture === "amd64",
  );
  if (match) return match;
  // An index without platforms (e.g. `podman save` of one image) holds one image: take it.
  const withoutPlatform = index.manifests.filter((descriptor) => !descriptor.platform);
  if (withoutPlatform.length === 1 && !isIndexMediaType(withoutPlatform[0]?.mediaType)) {
    return withoutPlatform[0] as Descriptor;
  }
  const platforms = index.manifests
    .map((d) => (d.platform ? `${d.platform.os}/${d.platform.architecture}` : "unspecified"))
    .join(", ");
  throw new ImageError(
    "BERTH_IMAGE_PLATFORM_NOT_FOUND",
    `${where} has no linux/amd64 image (it has: ${platforms || "none"}); pick a base built for linux/amd64`,
  );
}

/** Layer media types carried over from a base: Docker's gzip layer is byte-identical to OCI's. */
export function ociLayerMediaType(mediaType: string, where: string): string {
  switch (mediaType) {
    case MEDIA_TYPES.ociLayerGzip:
    case MEDIA_TYPES.dockerLayerGzip:
      return MEDIA_TYPES.ociLayerGzip;
    case MEDIA_TYPES.ociLayerTar:
      return MEDIA_TYPES.ociLayerTar;
    default:
      throw new ImageError(
        "BERTH_IMAGE_INPUT_INVALID",
        `${where} has a layer of media type ${mediaType}, which berth build cannot carry over ` +
          "(supported: gzip or plain tar layers)",
      );
  }
}

/** Manifest formats `berth build` writes. Docker's keeps HEALTHCHECK visible to podman and docker. */
export type ImageFormat = "oci" | "docker";
export const IMAGE_FORMATS: readonly ImageFormat[] = ["oci", "docker"];

export const FORMAT_MEDIA_TYPES: Record<
  ImageFormat,
  { manifest: string; config: string; layerGzip: string }
> = {
  oci: {
    manifest: MEDIA_TYPES.ociManifest,
    config: MEDIA_TYPES.ociConfig,
    layerGzip: MEDIA_TYPES.ociLayerGzip,
  },
  docker: {
    manifest: MEDIA_TYPES.dockerManifest,
    config: MEDIA_TYPES.dockerConfig,
    layerGzip: MEDIA_TYPES.dockerLayerGzip,
  },
};

/** A layer's media type in the chosen format (same bytes; Docker's format has no uncompressed layers). */
export function layerMediaTypeFor(format: ImageFormat, ociMediaType: string): string {
  if (format === "oci") return ociMediaType;
  if (ociMediaType === MEDIA_TYPES.ociLayerGzip) return MEDIA_TYPES.dockerLayerGzip;
  throw new ImageError(
    "BERTH_IMAGE_INPUT_INVALID",
    `the base has a layer of media type ${ociMediaType}, which the docker format cannot hold; build with --format oci`,
  );
}

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Serialises JSON deterministically: keys in the order the object was built, no whitespace. */
export function canonicalJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), "utf8");
}

export function parseJsonAs<T>(
  schema: z.ZodType<T>,
  bytes: Buffer,
  what: string,
  code: "BERTH_IMAGE_BASE_CORRUPT" | "BERTH_IMAGE_REGISTRY",
): T {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw new ImageError(code, `${what} is not valid JSON`, { cause: error });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ImageError(
      code,
      `${what} is not what the OCI image format describes: ${issue?.path.join(".") || "(root)"} ${issue?.message}`,
    );
  }
  return parsed.data;
}
