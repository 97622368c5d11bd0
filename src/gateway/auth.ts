// API keys: read from env:VAR or file:PATH, held only as SHA-256 digests, checked in constant time;
// and the rule for when auth is on (by default: when the gateway listens beyond loopback).
import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import type { ModelDeployment } from "../spec/index.js";
import { GatewayConfigError } from "./errors.js";

export interface KeyEntry {
  /** Shown in logs and used as the rate-limit identity; never the key itself. */
  name: string;
  key: string;
}

/**
 * Parses a key list: entries separated by newlines (and commas, for env variables), each `KEY` or
 * `NAME KEY`; blank lines and `#` comments are skipped. Unnamed keys are called key-1, key-2, ...
 */
export function parseKeyList(text: string): KeyEntry[] {
  const entries: KeyEntry[] = [];
  const chunks = text.split(/[\n,]/);
  for (const chunk of chunks) {
    const line = chunk.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const parts = line.split(/\s+/);
    if (parts.length >= 2) entries.push({ name: parts[0]!, key: parts.slice(1).join(" ") });
    else entries.push({ name: `key-${entries.length + 1}`, key: parts[0]! });
  }
  return entries;
}

export function bearerToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** The keys of one source, as digests: comparing fixed-length digests makes the compare constant-time. */
export class KeyRing {
  private readonly digests: Buffer[];
  private readonly names: string[];

  constructor(entries: readonly KeyEntry[]) {
    this.digests = entries.map((entry) => digest(entry.key));
    this.names = entries.map((entry) => entry.name);
  }

  get size(): number {
    return this.digests.length;
  }

  /** The name of the matching key, or undefined. Every key is compared, so timing does not tell which. */
  verify(presented: string | undefined): string | undefined {
    if (presented === undefined) return undefined;
    const presentedDigest = digest(presented);
    let match = -1;
    for (let index = 0; index < this.digests.length; index++) {
      const equal = timingSafeEqual(presentedDigest, this.digests[index]!);
      if (equal && match < 0) match = index;
    }
    return match < 0 ? undefined : this.names[match];
  }
}

export interface KeySourceContext {
  env: NodeJS.ProcessEnv;
  readFile: (path: string) => Promise<string>;
}

export const defaultKeySourceContext: KeySourceContext = {
  env: process.env,
  readFile: (path) => readFile(path, "utf8"),
};

/** Loads `env:VAR` or `file:PATH` (the spec's auth.apiKeysFrom). */
export async function loadKeySource(source: string, context: KeySourceContext): Promise<KeyRing> {
  const separator = source.indexOf(":");
  const kind = source.slice(0, separator);
  const target = source.slice(separator + 1);
  if (kind === "env") return new KeyRing(parseKeyList(context.env[target] ?? ""));
  if (kind === "file") {
    try {
      return new KeyRing(parseKeyList(await context.readFile(target)));
    } catch (error) {
      throw new GatewayConfigError(
        "BERTH_AUTH_KEYS_UNREADABLE",
        `cannot read API keys from ${source}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  }
  throw new GatewayConfigError("BERTH_AUTH_KEYS_UNREADABLE", `API key source must be env:VAR or file:PATH`);
}

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  if (bare === "localhost") return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  if (isIP(bare) === 6) return bare === "::1" || /^::ffff:127\./i.test(bare);
  return false;
}

export interface ModelAuth {
  enabled: boolean;
  keys?: KeyRing;
}

/**
 * A model's effective auth: spec.auth.enabled if set, else on exactly when the gateway listens beyond
 * loopback. On without any key is refused: it would either reject everyone or (worse) be mistaken
 * for protection.
 */
export async function resolveModelAuth(
  deployment: ModelDeployment,
  model: string,
  listenHost: string,
  context: KeySourceContext,
): Promise<ModelAuth> {
  const auth = deployment.spec.auth;
  const enabled = auth.enabled ?? !isLoopbackHost(listenHost);
  if (!enabled) return { enabled: false };
  const why =
    auth.enabled === true
      ? "spec.auth.enabled is true"
      : `the gateway listens on ${listenHost}, beyond loopback, where auth is on by default`;
  if (!auth.apiKeysFrom) {
    throw new GatewayConfigError(
      "BERTH_AUTH_NO_KEYS",
      `model "${model}": auth is on (${why}) but spec.auth.apiKeysFrom is not set; ` +
        "set it to env:VARIABLE or file:PATH, or set spec.auth.enabled: false",
    );
  }
  const keys = await loadKeySource(auth.apiKeysFrom, context);
  if (keys.size === 0) {
    throw new GatewayConfigError(
      "BERTH_AUTH_NO_KEYS",
      `model "${model}": auth is on (${why}) but ${auth.apiKeysFrom} holds no API key`,
    );
  }
  return { enabled: true, keys };
}
