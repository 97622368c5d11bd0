// Image references and base-image sources: what docker and podman accept, and what they refuse.
import { describe, expect, it } from "vitest";
import { ImageError } from "./errors.js";
import { formatReference, parseBaseSource, parseReference, registryApiHost } from "./reference.js";

const DIGEST = `sha256:${"a".repeat(64)}`;

describe("parseReference", () => {
  it.each([
    ["node:20-bookworm-slim", { registry: "docker.io", repository: "library/node", tag: "20-bookworm-slim" }],
    ["node", { registry: "docker.io", repository: "library/node", tag: "latest" }],
    ["berth-dev/berth:0.1.0", { registry: "docker.io", repository: "berth-dev/berth", tag: "0.1.0" }],
    ["ghcr.io/berth-dev/berth:0.1.0", { registry: "ghcr.io", repository: "berth-dev/berth", tag: "0.1.0" }],
    ["127.0.0.1:5000/berth", { registry: "127.0.0.1:5000", repository: "berth", tag: "latest" }],
    ["localhost/berth-node-base:20", { registry: "localhost", repository: "berth-node-base", tag: "20" }],
    [`127.0.0.1:5000/a/b@${DIGEST}`, { registry: "127.0.0.1:5000", repository: "a/b", digest: DIGEST }],
    [`r.io/a:t@${DIGEST}`, { registry: "r.io", repository: "a", tag: "t", digest: DIGEST }],
  ])("%s", (text, expected) => {
    expect(parseReference(text)).toEqual(expected);
  });

  it.each(["", "Upper/case:1", "a:b:c", "r.io/a@sha256:short", "r.io/a:-bad", "r.io//a"])(
    "rejects %j with BERTH_IMAGE_REFERENCE_INVALID",
    (text) => {
      expect(() => parseReference(text)).toThrow(ImageError);
      try {
        parseReference(text);
      } catch (error) {
        expect((error as ImageError).code).toBe("BERTH_IMAGE_REFERENCE_INVALID");
        expect((error as ImageError).isUsageError).toBe(true);
      }
    },
  );

  it("formats back to the form podman names loaded images by", () => {
    expect(formatReference(parseReference("127.0.0.1:5000/berth:x"))).toBe("127.0.0.1:5000/berth:x");
    expect(formatReference(parseReference("node:20"))).toBe("docker.io/library/node:20");
    expect(registryApiHost("docker.io")).toBe("registry-1.docker.io");
    expect(registryApiHost("127.0.0.1:5000")).toBe("127.0.0.1:5000");
  });
});

describe("parseBaseSource", () => {
  const existing = new Set(["/b/base.tar", "/b/lay:out"]);
  const exists = (path: string) => existing.has(path);

  it.each([
    ["oci-archive:/b/base.tar", { kind: "oci-archive", path: "/b/base.tar" }],
    [
      "oci-archive:/b/base.tar:localhost/berth-node-base:20",
      { kind: "oci-archive", path: "/b/base.tar", refName: "localhost/berth-node-base:20" },
    ],
    ["oci:/b/lay:out", { kind: "oci-dir", path: "/b/lay:out" }],
    ["oci:/b/lay:out:tag", { kind: "oci-dir", path: "/b/lay:out", refName: "tag" }],
    ["oci-archive:/missing.tar", { kind: "oci-archive", path: "/missing.tar" }],
  ])("%s", (text, expected) => {
    expect(parseBaseSource(text, exists)).toEqual(expected);
  });

  it("reads a plain or docker:// reference as a registry image", () => {
    expect(parseBaseSource("node:20", exists)).toEqual({
      kind: "registry",
      reference: { registry: "docker.io", repository: "library/node", tag: "20" },
    });
    expect(parseBaseSource("docker://127.0.0.1:5000/x:1", exists)).toEqual({
      kind: "registry",
      reference: { registry: "127.0.0.1:5000", repository: "x", tag: "1" },
    });
  });
});
