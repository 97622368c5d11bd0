import { describe, expect, it } from "vitest";
import { type ModelDeployment, modelDeploymentSchema } from "../spec/index.js";
import {
  bearerToken,
  isLoopbackHost,
  KeyRing,
  loadKeySource,
  parseKeyList,
  resolveModelAuth,
} from "./auth.js";
import { GatewayConfigError } from "./errors.js";

function deployment(auth: Record<string, unknown> = {}): ModelDeployment {
  return modelDeploymentSchema.parse({
    apiVersion: "berth.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "gpt2" },
    spec: { model: { source: "tiny://tiny" }, auth },
  });
}

const noFiles = {
  env: {},
  readFile: async () => Promise.reject(Object.assign(new Error("x"), { code: "ENOENT" })),
};

describe("parseKeyList", () => {
  it.each([
    { text: "", expected: [] },
    { text: "sk-1", expected: [{ name: "key-1", key: "sk-1" }] },
    {
      text: "alice sk-a\nbob\tsk-b\n",
      expected: [
        { name: "alice", key: "sk-a" },
        { name: "bob", key: "sk-b" },
      ],
    },
    {
      text: "# comment\n\n  sk-x  \r\nsk-y",
      expected: [
        { name: "key-1", key: "sk-x" },
        { name: "key-2", key: "sk-y" },
      ],
    },
    {
      text: "sk-1,ci sk-2",
      expected: [
        { name: "key-1", key: "sk-1" },
        { name: "ci", key: "sk-2" },
      ],
    },
  ])("parses %j", ({ text, expected }) => {
    expect(parseKeyList(text)).toEqual(expected);
  });
});

describe("bearerToken", () => {
  it.each([
    [undefined, undefined],
    ["", undefined],
    ["Bearer sk-1", "sk-1"],
    ["bearer   sk-1 ", "sk-1"],
    ["Basic dXNlcg==", undefined],
    ["Bearer", undefined],
    ["Bearer a b", undefined],
    [["Bearer first", "Bearer second"], "first"],
  ])("%j → %j", (header, expected) => {
    expect(bearerToken(header)).toBe(expected);
  });
});

describe("KeyRing", () => {
  const ring = new KeyRing(parseKeyList("alice sk-alice\nbob sk-bob"));

  it.each([
    ["sk-alice", "alice"],
    ["sk-bob", "bob"],
    ["sk-alic", undefined],
    ["sk-alicex", undefined],
    ["", undefined],
    [undefined, undefined],
  ])("verifies %j as %j", (presented, expected) => {
    expect(ring.verify(presented)).toBe(expected);
  });

  it("does not keep the keys themselves", () => {
    expect(JSON.stringify(ring)).not.toContain("sk-alice");
    expect(JSON.stringify(Object.values(ring))).not.toContain("sk-alice");
  });
});

describe("isLoopbackHost", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["localhost", true],
    ["::1", true],
    ["[::1]", true],
    ["::ffff:127.0.0.1", true],
    ["0.0.0.0", false],
    ["::", false],
    ["192.168.1.10", false],
    ["example.com", false],
  ])("%s → %s", (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});

describe("loadKeySource", () => {
  it("reads env and file sources", async () => {
    const context = { env: { KEYS: "sk-env" }, readFile: async (path: string) => `ci sk-file-${path}` };
    expect((await loadKeySource("env:KEYS", context)).verify("sk-env")).toBe("key-1");
    expect((await loadKeySource("file:/etc/k", context)).verify("sk-file-/etc/k")).toBe("ci");
    expect((await loadKeySource("env:MISSING", context)).size).toBe(0);
  });

  it("names an unreadable file without its content", async () => {
    await expect(loadKeySource("file:/nope", noFiles)).rejects.toMatchObject({
      code: "BERTH_AUTH_KEYS_UNREADABLE",
      message: expect.stringContaining("file:/nope: ENOENT"),
    });
  });
});

describe("resolveModelAuth", () => {
  it.each([
    { name: "off by default on loopback", auth: {}, host: "127.0.0.1", enabled: false },
    { name: "off when disabled beyond loopback", auth: { enabled: false }, host: "0.0.0.0", enabled: false },
    { name: "on by default beyond loopback", auth: { apiKeysFrom: "env:K" }, host: "0.0.0.0", enabled: true },
    {
      name: "on when enabled on loopback",
      auth: { enabled: true, apiKeysFrom: "env:K" },
      host: "::1",
      enabled: true,
    },
  ])("$name", async ({ auth, host, enabled }) => {
    const resolved = await resolveModelAuth(deployment(auth), "gpt2", host, {
      ...noFiles,
      env: { K: "sk-1" },
    });
    expect(resolved.enabled).toBe(enabled);
    if (enabled) expect(resolved.keys?.verify("sk-1")).toBe("key-1");
  });

  it.each([
    { name: "beyond loopback without a key source", auth: {}, host: "0.0.0.0", says: "beyond loopback" },
    {
      name: "enabled without a key source",
      auth: { enabled: true },
      host: "127.0.0.1",
      says: "spec.auth.enabled is true",
    },
    {
      name: "a key source without keys",
      auth: { apiKeysFrom: "env:EMPTY" },
      host: "10.0.0.1",
      says: "env:EMPTY holds no API key",
    },
  ])("refuses $name", async ({ auth, host, says }) => {
    const attempt = resolveModelAuth(deployment(auth), "gpt2", host, { ...noFiles, env: { EMPTY: " \n" } });
    await expect(attempt).rejects.toBeInstanceOf(GatewayConfigError);
    await expect(attempt).rejects.toMatchObject({
      code: "BERTH_AUTH_NO_KEYS",
      message: expect.stringContaining(says),
    });
  });
});
