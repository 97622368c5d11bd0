// Registry credentials for `berth build`: BERTH_REGISTRY_USERNAME/PASSWORD, else the auth files podman
// and docker write (`podman login`, `docker login`). Never taken from the command line, where ps shows it.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { DOCKER_HUB } from "./reference.js";
import type { RegistryCredentials } from "./registry.js";

const authFileSchema = z.looseObject({
  auths: z.record(z.string(), z.looseObject({ auth: z.string().optional() })).optional(),
});

/** Keys an auth file may use for a registry (Docker Hub has historical ones). */
function authKeys(registry: string): string[] {
  if (registry === DOCKER_HUB)
    return ["docker.io", "https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"];
  return [registry, `https://${registry}`, `http://${registry}`];
}

/** Credentials for `registry` in a parsed auth file (`{"auths":{"host":{"auth":"base64(user:pass)"}}}`). */
export function credentialsFromAuthFile(json: unknown, registry: string): RegistryCredentials | undefined {
  const parsed = authFileSchema.safeParse(json);
  if (!parsed.success || !parsed.data.auths) return undefined;
  for (const key of authKeys(registry)) {
    const encoded = parsed.data.auths[key]?.auth;
    if (!encoded) continue;
    const decoded = Buffer.from(encoded, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** The auth files podman and docker use, in the order podman reads them. */
export function authFilePaths(env: NodeJS.ProcessEnv): string[] {
  const home = env.HOME ?? homedir();
  const paths: string[] = [];
  if (env.REGISTRY_AUTH_FILE) paths.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, "containers", "auth.json"));
  paths.push(join(home, ".config", "containers", "auth.json"));
  paths.push(join(env.DOCKER_CONFIG ?? join(home, ".docker"), "config.json"));
  return paths;
}

export function resolveCredentials(
  registry: string,
  env: NodeJS.ProcessEnv = process.env,
): RegistryCredentials | undefined {
  if (env.BERTH_REGISTRY_USERNAME && env.BERTH_REGISTRY_PASSWORD !== undefined) {
    return { username: env.BERTH_REGISTRY_USERNAME, password: env.BERTH_REGISTRY_PASSWORD };
  }
  for (const path of authFilePaths(env)) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch {
      continue;
    }
    const found = credentialsFromAuthFile(json, registry);
    if (found) return found;
  }
  return undefined;
}
