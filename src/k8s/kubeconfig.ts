// Reads the kubeconfig: which server, which credentials, which namespace. Client certificates, tokens
// and basic auth are read here directly; exec plugins, auth providers, impersonation, proxies and the
// in-cluster service account go through @kubernetes/client-node, which implements them all.
//
// Why two paths: importing client-node costs about a second of CPU (it loads ~1000 generated model
// files), which is most of `berth deploy`'s own time for one model; the common kubeconfigs need none of it.

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { K8sError } from "./errors.js";

export interface KubeconfigOptions {
  kubeconfig?: string;
  context?: string;
}

export interface TlsOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized?: boolean;
  servername?: string;
}

export interface ResolvedKubeconfig {
  context: string;
  server: string;
  namespace: string;
  tls: TlsOptions;
  /** Authorization (and impersonation) headers for the next request; may refresh expiring tokens. */
  headers(): Promise<Record<string, string>>;
}

/** kubeconfig lists: [{ name, <field>: item }]; null or missing is empty. */
function namedList<T extends z.ZodType>(item: T) {
  return z
    .array(z.looseObject({ name: z.string(), value: item }))
    .nullish()
    .transform((list) => list ?? []);
}
/** Renames each entry's `cluster`/`user`/`context` key to `value`, so one schema shape serves all three. */
function entries(list: unknown, field: string): unknown {
  return Array.isArray(list)
    ? list.map((entry) =>
        entry && typeof entry === "object"
          ? { ...entry, value: (entry as Record<string, unknown>)[field] }
          : entry,
      )
    : list;
}

const clusterSchema = z.looseObject({
  server: z.string(),
  "certificate-authority": z.string().optional(),
  "certificate-authority-data": z.string().optional(),
  "insecure-skip-tls-verify": z.boolean().optional(),
  "tls-server-name": z.string().optional(),
  "proxy-url": z.string().optional(),
});
const userSchema = z
  .looseObject({
    "client-certificate": z.string().optional(),
    "client-certificate-data": z.string().optional(),
    "client-key": z.string().optional(),
    "client-key-data": z.string().optional(),
    token: z.string().optional(),
    tokenFile: z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional(),
    exec: z.unknown().optional(),
    "auth-provider": z.unknown().optional(),
    as: z.string().optional(),
  })
  .nullish()
  .transform((user) => user ?? {});
const kubeconfigSchema = z.looseObject({
  "current-context": z.string().optional(),
  clusters: z.preprocess((list) => entries(list, "cluster"), namedList(clusterSchema)),
  users: z.preprocess((list) => entries(list, "user"), namedList(userSchema)),
  contexts: z.preprocess(
    (list) => entries(list, "context"),
    namedList(
      z.looseObject({ cluster: z.string(), user: z.string().optional(), namespace: z.string().optional() }),
    ),
  ),
});
type KubeconfigFile = z.output<typeof kubeconfigSchema> & { dir: string };

/** The kubeconfig files in effect: --kubeconfig, else $KUBECONFIG's list, else ~/.kube/config. */
export function kubeconfigFiles(options: KubeconfigOptions, env: NodeJS.ProcessEnv = process.env): string[] {
  if (options.kubeconfig) return [options.kubeconfig];
  if (env.KUBECONFIG) return env.KUBECONFIG.split(delimiter).filter(Boolean);
  const home = join(homedir(), ".kube", "config");
  return existsSync(home) ? [home] : [];
}

/**
 * Resolves the context with the fast path, or returns undefined when it needs client-node (exec
 * plugins, auth providers, impersonation, proxies, in-cluster): the caller then uses client-node.
 */
export async function resolveKubeconfig(options: KubeconfigOptions): Promise<ResolvedKubeconfig | undefined> {
  const paths = kubeconfigFiles(options);
  if (paths.length === 0) return undefined;
  const files: KubeconfigFile[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      // Missing entries of $KUBECONFIG are skipped, as kubectl does; a missing --kubeconfig is an error.
      if (options.kubeconfig)
        throw new K8sError("BERTH_K8S_CONFIG", `cannot read kubeconfig ${path}: ${String(error)}`);
      continue;
    }
    const parsed = kubeconfigSchema.safeParse(parse(text) ?? {});
    if (!parsed.success) {
      throw new K8sError(
        "BERTH_K8S_CONFIG",
        `${path} is not a kubeconfig: ${parsed.error.issues[0]?.message ?? "invalid"}`,
      );
    }
    files.push({ ...parsed.data, dir: dirname(path) });
  }
  // Merging as kubectl does: the first file that names a thing wins.
  const first = <T>(pick: (file: KubeconfigFile) => T | undefined) => {
    for (const file of files) {
      const value = pick(file);
      if (value !== undefined) return { value, dir: file.dir };
    }
    return undefined;
  };
  const contextName = options.context ?? first((file) => file["current-context"] || undefined)?.value;
  if (!contextName)
    throw new K8sError("BERTH_K8S_CONFIG", "the kubeconfig has no current-context; pass --context");
  const context = first((file) => file.contexts.find((entry) => entry.name === contextName)?.value);
  if (!context) {
    const known = [...new Set(files.flatMap((file) => file.contexts.map((entry) => entry.name)))];
    throw new K8sError(
      "BERTH_K8S_CONFIG",
      `no context "${contextName}" in the kubeconfig (it has: ${known.join(", ") || "none"})`,
    );
  }
  const cluster = first((file) => file.clusters.find((entry) => entry.name === context.value.cluster)?.value);
  if (!cluster) {
    throw new K8sError(
      "BERTH_K8S_CONFIG",
      `context "${contextName}" names cluster "${context.value.cluster}", which the kubeconfig lacks`,
    );
  }
  const userName = context.value.user;
  const user =
    userName === undefined
      ? { value: {}, dir: context.dir }
      : first((file) => file.users.find((entry) => entry.name === userName)?.value);
  if (!user)
    throw new K8sError(
      "BERTH_K8S_CONFIG",
      `context "${contextName}" names user "${userName}", which the kubeconfig lacks`,
    );
  const u = user.value as z.output<typeof userSchema>;
  if (
    u.exec !== undefined ||
    u["auth-provider"] !== undefined ||
    u.as !== undefined ||
    cluster.value["proxy-url"]
  ) {
    return undefined;
  }

  const fromFileOrData = async (
    file: string | undefined,
    data: string | undefined,
    dir: string,
    what: string,
  ) => {
    if (data) return Buffer.from(data, "base64");
    if (!file) return undefined;
    const path = isAbsolute(file) ? file : join(dir, file);
    try {
      return await readFile(path);
    } catch (error) {
      throw new K8sError(
        "BERTH_K8S_CONFIG",
        `cannot read the ${what} ${path} named by the kubeconfig: ${String(error)}`,
      );
    }
  };
  const c = cluster.value;
  const tls: TlsOptions = {};
  const ca = await fromFileOrData(
    c["certificate-authority"],
    c["certificate-authority-data"],
    cluster.dir,
    "certificate authority",
  );
  if (ca) tls.ca = ca;
  const cert = await fromFileOrData(
    u["client-certificate"],
    u["client-certificate-data"],
    user.dir,
    "client certificate",
  );
  if (cert) tls.cert = cert;
  const key = await fromFileOrData(u["client-key"], u["client-key-data"], user.dir, "client key");
  if (key) tls.key = key;
  if (c["insecure-skip-tls-verify"]) tls.rejectUnauthorized = false;
  if (c["tls-server-name"]) tls.servername = c["tls-server-name"];

  const tokenFile = u.tokenFile
    ? isAbsolute(u.tokenFile)
      ? u.tokenFile
      : join(user.dir, u.tokenFile)
    : undefined;
  const headers = async (): Promise<Record<string, string>> => {
    if (u.token) return { authorization: `Bearer ${u.token}` };
    // Projected service-account tokens rotate: read the file each time (it is small and cached by the OS).
    if (tokenFile) return { authorization: `Bearer ${(await readFile(tokenFile, "utf8")).trim()}` };
    if (u.username !== undefined) {
      return {
        authorization: `Basic ${Buffer.from(`${u.username}:${u.password ?? ""}`).toString("base64")}`,
      };
    }
    return {};
  };
  return {
    context: contextName,
    server: c.server,
    namespace: context.value.namespace ?? "default",
    tls,
    headers,
  };
}
