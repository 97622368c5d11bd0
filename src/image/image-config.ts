// The image config and manifest Berth writes: the base's config with Berth's user, env, entrypoint,
// port, health check and labels on top, and the new layers appended. Pure; key order is fixed so the
// same inputs serialise to the same bytes (and digests).
import { type Descriptor, type ImageConfig, MEDIA_TYPES } from "./oci.js";

export interface HealthcheckSettings {
  test: string[];
  intervalSeconds: number;
  timeoutSeconds: number;
  startPeriodSeconds: number;
  retries: number;
}

export interface ImageSettings {
  /** RFC 3339 time of the build (from SOURCE_DATE_EPOCH, so reproducible). */
  created: string;
  user: string;
  workingDir: string;
  entrypoint: string[];
  exposedPort: number;
  /** Set on top of the base's environment (same names replaced). */
  env: Record<string, string>;
  /** Set on top of the base's labels. */
  labels: Record<string, string>;
  healthcheck: HealthcheckSettings;
}

export interface AddedLayer {
  diffId: string;
  createdBy: string;
}

const NANOSECONDS = 1_000_000_000;

/** Docker's `KEY=value` list, base entries first, ours replacing same-named ones in place. */
export function mergeEnv(base: readonly string[], extra: Record<string, string>): string[] {
  const merged = new Map<string, string>();
  for (const item of base) {
    const equals = item.indexOf("=");
    merged.set(equals < 0 ? item : item.slice(0, equals), equals < 0 ? "" : item.slice(equals + 1));
  }
  for (const [name, value] of Object.entries(extra)) merged.set(name, value);
  return [...merged].map(([name, value]) => `${name}=${value}`);
}

function sortedRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The new config. The base's Cmd is dropped (it would become arguments to our entrypoint), its
 * history kept so tools can still match history entries to layers.
 */
export function buildImageConfig(
  base: ImageConfig,
  added: readonly AddedLayer[],
  settings: ImageSettings,
): Record<string, unknown> {
  const baseContainer = base.config ?? {};
  const exposed: Record<string, Record<string, never>> = {};
  for (const port of Object.keys(baseContainer.ExposedPorts ?? {})) exposed[port] = {};
  exposed[`${settings.exposedPort}/tcp`] = {};
  return {
    created: settings.created,
    architecture: "amd64",
    os: "linux",
    config: {
      User: settings.user,
      ExposedPorts: Object.fromEntries(Object.entries(exposed).sort(([a], [b]) => (a < b ? -1 : 1))),
      Env: mergeEnv(baseContainer.Env ?? [], settings.env),
      Entrypoint: settings.entrypoint,
      WorkingDir: settings.workingDir,
      Labels: sortedRecord({ ...(baseContainer.Labels ?? {}), ...settings.labels }),
      StopSignal: "SIGTERM",
      Healthcheck: {
        Test: ["CMD", ...settings.healthcheck.test],
        Interval: settings.healthcheck.intervalSeconds * NANOSECONDS,
        Timeout: settings.healthcheck.timeoutSeconds * NANOSECONDS,
        StartPeriod: settings.healthcheck.startPeriodSeconds * NANOSECONDS,
        Retries: settings.healthcheck.retries,
      },
    },
    rootfs: { type: "layers", diff_ids: [...base.rootfs.diff_ids, ...added.map((layer) => layer.diffId)] },
    history: [
      ...(base.history ?? []),
      ...added.map((layer) => ({ created: settings.created, created_by: layer.createdBy })),
    ],
  };
}

export function descriptorOf(mediaType: string, digest: string, size: number): Descriptor {
  return { mediaType, digest, size };
}

/**
 * An image manifest of `mediaType` (OCI or Docker schema 2); annotations (OCI only) name the base the
 * image was built on.
 */
export function buildManifest(
  mediaType: string,
  config: Descriptor,
  layers: readonly Descriptor[],
  annotations: Record<string, string>,
): Record<string, unknown> {
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((layer) => ({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size })),
  };
  if (mediaType === MEDIA_TYPES.ociManifest && Object.keys(annotations).length > 0) {
    manifest.annotations = sortedRecord(annotations);
  }
  return manifest;
}

/** An OCI layout's index.json naming one image. */
export function buildLayoutIndex(manifest: Descriptor, refName: string): Record<string, unknown> {
  return {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: manifest.mediaType,
        digest: manifest.digest,
        size: manifest.size,
        annotations: { "org.opencontainers.image.ref.name": refName },
      },
    ],
  };
}

/** Seconds since the epoch → RFC 3339, as OCI's `created` wants it. */
export function rfc3339(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(".000Z", "Z");
}
