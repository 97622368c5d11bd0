// Image references (`registry/repo:tag@sha256:…`) and base-image sources (`oci-archive:FILE`,
// `oci:DIR`, a registry reference): parsing and formatting, pure.
import { ImageError } from "./errors.js";

export interface ImageReference {
  /** Registry host[:port] as written, e.g. `docker.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Repository path, e.g. `library/node`, `berth-dev/berth`. */
  repository: string;
  tag?: string;
  digest?: string;
}

export const DOCKER_HUB = "docker.io";
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
export const DIGEST = /^sha256:[a-f0-9]{64}$/;

function invalid(text: string, why: string): ImageError {
  return new ImageError(
    "BERTH_IMAGE_REFERENCE_INVALID",
    `"${text}" is not an image reference: ${why} (expected [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], ` +
      "e.g. 127.0.0.1:5000/berth:0.1.0)",
  );
}

/** Parses a reference the way docker and podman do: a first part with `.` or `:` or `localhost` is the registry. */
export function parseReference(text: string): ImageReference {
  let rest = text.trim();
  if (rest.length === 0) throw invalid(text, "it is empty");
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(text, "the digest must be sha256: and 64 lowercase hex digits");
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw invalid(text, `"${tag}" is not a valid tag`);
  }
  const parts = rest.split("/");
  let registry = DOCKER_HUB;
  const first = parts[0] ?? "";
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    registry = first;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((part) => !COMPONENT.test(part))) {
    throw invalid(text, "repository names are lowercase letters, digits and . _ - separated by /");
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift("library");
  const reference: ImageReference = { registry, repository: parts.join("/") };
  if (tag !== undefined) reference.tag = tag;
  if (digest !== undefined) reference.digest = digest;
  if (reference.tag === undefined && reference.digest === undefined) reference.tag = "latest";
  return reference;
}

/** `registry/repository[:tag][@digest]`, the form podman prints and `podman load` names images by. */
export function formatReference(reference: ImageReference): string {
  let text = `${reference.registry}/${reference.repository}`;
  if (reference.tag !== undefined) text += `:${reference.tag}`;
  if (reference.digest !== undefined) text += `@${reference.digest}`;
  return text;
}

/** The host the distribution API lives on (Docker Hub's API is not at docker.io). */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? "registry-1.docker.io" : registry;
}

/** The tag or digest a manifest request names. */
export function manifestReference(reference: ImageReference): string {
  return reference.digest ?? reference.tag ?? "latest";
}

export type BaseSource =
  | { kind: "registry"; reference: ImageReference }
  | { kind: "oci-archive"; path: string; refName?: string }
  | { kind: "oci-dir"; path: string; refName?: string };

/**
 * `oci-archive:FILE[:REF]`, `oci:DIR[:REF]` (REF: the image's org.opencontainers.image.ref.name),
 * `docker://REFERENCE` or a plain reference (a registry). `exists` tells a path with a colon in its
 * name from PATH:REF.
 */
export function parseBaseSource(text: string, exists: (path: string) => boolean): BaseSource {
  const local = /^(oci-archive|oci):(.+)$/.exec(text);
  if (local) {
    const kind = local[1] === "oci" ? "oci-dir" : "oci-archive";
    const spec = local[2] as string;
    if (exists(spec)) return { kind, path: spec };
    // PATH:REF, where REF may itself hold colons (localhost/berth-node-base:20): the shortest existing PATH.
    for (let colon = spec.indexOf(":"); colon > 0; colon = spec.indexOf(":", colon + 1)) {
      if (exists(spec.slice(0, colon)))
        return { kind, path: spec.slice(0, colon), refName: spec.slice(colon + 1) };
    }
    return { kind, path: spec };
  }
  const remote = text.startsWith("docker://") ? text.slice("docker://".length) : text;
  return { kind: "registry", reference: parseReference(remote) };
}

export function describeBaseSource(source: BaseSource): string {
  switch (source.kind) {
    case "registry":
      return formatReference(source.reference);
    case "oci-archive":
      return `oci-archive:${source.path}${source.refName ? `:${source.refName}` : ""}`;
    case "oci-dir":
      return `oci:${source.path}${source.refName ? `:${source.refName}` : ""}`;
  }
}
