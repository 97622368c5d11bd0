// Errors of the image boundary (`berth build`, src/image): one class, stable codes, and messages that
// say what to do. Callers and tests match on `code`, never on message text.

export const IMAGE_ERROR_CODES = {
  /** The registry answered 401/403: no, wrong or insufficient credentials. */
  BERTH_IMAGE_REGISTRY_AUTH: "registry refused the credentials",
  /** The base image is not in the registry (404) or not in the OCI archive/layout. */
  BERTH_IMAGE_BASE_NOT_FOUND: "base image not found",
  /** A base blob's bytes do not hash to the digest its manifest names. */
  BERTH_IMAGE_BASE_CORRUPT: "base image is corrupt",
  /** The base has no linux/amd64 image. */
  BERTH_IMAGE_PLATFORM_NOT_FOUND: "base image has no linux/amd64 variant",
  /** ENOSPC while writing a layer, the archive or the cache. */
  BERTH_IMAGE_DISK_FULL: "disk full",
  /** Any other registry failure: unreachable, 5xx, a protocol violation. */
  BERTH_IMAGE_REGISTRY: "registry request failed",
  /** A --tag or --base that is not an image reference. */
  BERTH_IMAGE_REFERENCE_INVALID: "invalid image reference",
  /** The project is not ready to package: no dist/, node_modules out of date, model file missing. */
  BERTH_IMAGE_INPUT_INVALID: "invalid build input",
} as const;

export type ImageErrorCode = keyof typeof IMAGE_ERROR_CODES;

/** Codes that mean the user's input is wrong (CLI exit code 2) rather than an operation failing. */
const USAGE_CODES: ReadonlySet<ImageErrorCode> = new Set([
  "BERTH_IMAGE_REFERENCE_INVALID",
  "BERTH_IMAGE_INPUT_INVALID",
]);

export class ImageError extends Error {
  constructor(
    readonly code: ImageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ImageError";
  }

  get isUsageError(): boolean {
    return USAGE_CODES.has(this.code);
  }
}

/** Node's error code of an fs/network failure, if it has one. */
export function systemErrorCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

/**
 * Turns ENOSPC (and EDQUOT, a full quota) into BERTH_IMAGE_DISK_FULL naming what was being written;
 * other errors pass through unchanged.
 */
export function asDiskFullError(error: unknown, writing: string, path: string): unknown {
  const code = systemErrorCode(error);
  if (code !== "ENOSPC" && code !== "EDQUOT") return error;
  return new ImageError(
    "BERTH_IMAGE_DISK_FULL",
    `no space left on the device while writing ${writing} (${path}). Free space there, or point ` +
      "BERTH_HOME (the layer cache) or --oci-archive at a disk with room; `berth build` needs about " +
      "twice the image size free.",
    { cause: error },
  );
}
