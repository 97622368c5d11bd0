// A small Kubernetes REST client: the kubeconfig is read by kubeconfig.ts (and by @kubernetes/client-node
// for exec plugins, auth providers and in-cluster); requests go over one undici connection pool as raw JSON.
//
// Why not client-node's KubernetesObjectApi: it serialises through its generated models, which drop
// fields it does not know and read NetworkPolicy's `from` as `_from` (so it silently vanishes), and it
// cannot send fieldValidation=Strict. Raw JSON keeps what the API server sees exactly what Berth rendered.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Agent } from "undici";
import { errorFromResponse, type FailedRequest, K8sError, unreachableError } from "./errors.js";
import { type ResolvedKubeconfig, resolveKubeconfig, type TlsOptions } from "./kubeconfig.js";

export interface KubeClientOptions {
  /** A kubeconfig file; default $KUBECONFIG, then ~/.kube/config, then the in-cluster service account. */
  kubeconfig?: string;
  /** A context of the kubeconfig; default its current-context. */
  context?: string;
  /** Connections kept open to the API server (concurrent requests beyond it queue). */
  connections?: number;
}

export interface KubeRequest {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  accept?: string;
  /** Names the object in error messages ("Deployment/gpt2"). */
  objectRef?: string;
  /** Answer statuses that resolve instead of throwing (e.g. 404 for "does it exist?"). */
  allowStatus?: readonly number[];
  signal?: AbortSignal;
}

export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
}

export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: Record<string, unknown>;
}

export interface KubeClient {
  readonly server: string;
  readonly context: string;
  /** The kube context's namespace, or "default". */
  readonly defaultNamespace: string;
  /** HTTP requests sent so far (watches included): what the benchmark reports. */
  readonly requestCount: number;
  request<T = unknown>(request: KubeRequest): Promise<KubeResponse<T>>;
  /**
   * Streams watch events of a collection until `onEvent` returns true (resolves), the signal aborts
   * (resolves) or the server ends the watch (resolves false: the caller re-lists and watches again).
   */
  watch(
    path: string,
    query: Record<string, string | undefined>,
    onEvent: (event: WatchEvent) => boolean,
    signal?: AbortSignal,
  ): Promise<boolean>;
  close(): Promise<void>;
}

const REQUEST_TIMEOUT_MS = 30_000;
/** Re-read credentials this often: exec plugins and OIDC hand out tokens that expire. */
const CREDENTIAL_TTL_MS = 60_000;

export async function createKubeClient(options: KubeClientOptions = {}): Promise<KubeClient> {
  const resolved = (await resolveKubeconfig(options)) ?? (await resolveWithClientNode(options));
  const serverUrl = new URL(resolved.server);
  const origin = serverUrl.origin;
  // Some servers sit behind a path (rancher: https://host/k8s/clusters/ID).
  const prefix = serverUrl.pathname.replace(/\/$/, "");
  const cluster = { server: resolved.server };
  const { tls } = resolved;
  const agent = new Agent({
    connections: options.connections ?? 16,
    connect: {
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.cert ? { cert: tls.cert } : {}),
      ...(tls.key ? { key: tls.key } : {}),
      ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
      ...(tls.servername ? { servername: tls.servername } : {}),
    },
  });
  const authHeaders = () => resolved.headers();

  let requestCount = 0;
  const urlPath = (path: string, query: Record<string, string | undefined> = {}) => {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, value);
    const text = search.toString();
    return `${prefix}${path}${text ? `?${text}` : ""}`;
  };

  const send = async (request: KubeRequest, timeoutMs: number | undefined) => {
    requestCount++;
    const headers: Record<string, string> = {
      ...(await authHeaders()),
      accept: request.accept ?? "application/json",
      "user-agent": "berth",
    };
    let body: string | undefined;
    if (request.body !== undefined) {
      body = JSON.stringify(request.body);
      headers["content-type"] = request.contentType ?? "application/json";
    }
    try {
      return await agent.request({
        origin,
        path: urlPath(request.path, request.query),
        method: request.method,
        headers,
        body,
        signal: request.signal,
        headersTimeout: timeoutMs ?? 0,
        bodyTimeout: timeoutMs ?? 0,
      });
    } catch (error) {
      if ((error as { name?: string }).name === "AbortError") throw error;
      throw unreachableError(cluster.server, error);
    }
  };

  const failure = async (request: KubeRequest, status: number, text: string): Promise<FailedRequest> => {
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON (a proxy's HTML page): keep the text for the message.
    }
    return { method: request.method, path: request.path, status, body: parsed };
  };

  return {
    server: resolved.server,
    context: resolved.context,
    defaultNamespace: resolved.namespace,
    get requestCount() {
      return requestCount;
    },
    async request<T>(request: KubeRequest): Promise<KubeResponse<T>> {
      const response = await send(request, REQUEST_TIMEOUT_MS);
      const text = await response.body.text();
      if (response.statusCode >= 200 && response.statusCode < 300) {
        return { status: response.statusCode, body: (text ? JSON.parse(text) : undefined) as T };
      }
      const failed = await failure(request, response.statusCode, text);
      if (request.allowStatus?.includes(response.statusCode)) {
        return { status: response.statusCode, body: failed.body as T };
      }
      throw errorFromResponse(failed, request.objectRef);
    },
    async watch(path, query, onEvent, signal) {
      const request: KubeRequest = { method: "GET", path, query: { ...query, watch: "true" }, signal };
      let response: Awaited<ReturnType<typeof send>>;
      try {
        response = await send(request, undefined);
      } catch (error) {
        if (signal?.aborted) return true;
        throw error;
      }
      if (response.statusCode !== 200) {
        throw errorFromResponse(await failure(request, response.statusCode, await response.body.text()));
      }
      let buffered = "";
      try {
        for await (const chunk of response.body) {
          buffered += chunk.toString();
          let newline = buffered.indexOf("\n");
          while (newline >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            newline = buffered.indexOf("\n");
            if (!line) continue;
            const event = JSON.parse(line) as WatchEvent;
            // ERROR is 410 Gone (the resourceVersion is too old): the caller re-lists.
            if (event.type === "ERROR") return false;
            if (onEvent(event)) return true;
          }
        }
      } catch (error) {
        if (signal?.aborted) return true;
        throw error;
      } finally {
        response.body.destroy();
      }
      return false;
    },
    async close() {
      await agent.close();
    },
  };
}

/** Exec plugins, auth providers, impersonation, proxies, in-cluster: client-node's KubeConfig does them. */
async function resolveWithClientNode(options: KubeClientOptions): Promise<ResolvedKubeconfig> {
  // Imported only here: client-node is large (about a second to load).
  const { KubeConfig } = await import("@kubernetes/client-node");
  const config = new KubeConfig();
  try {
    if (options.kubeconfig) {
      if (!existsSync(options.kubeconfig)) throw new Error(`no such file: ${options.kubeconfig}`);
      config.loadFromFile(options.kubeconfig);
    } else if (!process.env.KUBECONFIG && !existsSync(join(homedir(), ".kube", "config"))) {
      if (!process.env.KUBERNETES_SERVICE_HOST) {
        throw new Error("no kubeconfig: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config");
      }
      config.loadFromCluster();
    } else {
      config.loadFromDefault();
    }
    if (options.context) {
      if (!config.getContextObject(options.context)) {
        const known = config.getContexts().map((context) => context.name);
        throw new Error(
          `no context "${options.context}" in the kubeconfig (it has: ${known.join(", ") || "none"})`,
        );
      }
      config.setCurrentContext(options.context);
    }
  } catch (error) {
    throw new K8sError("BERTH_K8S_CONFIG", error instanceof Error ? error.message : String(error));
  }
  const cluster = config.getCurrentCluster();
  if (!cluster) {
    throw new K8sError(
      "BERTH_K8S_CONFIG",
      `the kube context "${config.getCurrentContext()}" names no cluster`,
    );
  }
  const contextName = config.getCurrentContext();
  type HttpsOptions = Parameters<typeof config.applyToHTTPSOptions>[0] & {
    headers?: Record<string, string>;
    auth?: string;
  };
  const readCredentials = async (): Promise<HttpsOptions> => {
    const https: HttpsOptions = { headers: {} };
    await config.applyToHTTPSOptions(https);
    return https;
  };
  let credentials: HttpsOptions;
  try {
    credentials = await readCredentials();
  } catch (error) {
    throw new K8sError(
      "BERTH_K8S_CONFIG",
      `cannot read credentials of context "${contextName}": ${String(error)}`,
    );
  }
  let credentialsReadAt = Date.now();
  const tls: TlsOptions = {};
  if (credentials.ca) tls.ca = Buffer.from(credentials.ca as Buffer);
  if (credentials.cert) tls.cert = Buffer.from(credentials.cert as Buffer);
  if (credentials.key) tls.key = Buffer.from(credentials.key as Buffer);
  if (credentials.rejectUnauthorized !== undefined) tls.rejectUnauthorized = credentials.rejectUnauthorized;
  if (credentials.servername) tls.servername = credentials.servername;
  return {
    context: contextName,
    server: cluster.server,
    namespace: config.getContextObject(contextName)?.namespace ?? "default",
    tls,
    async headers() {
      if (Date.now() - credentialsReadAt > CREDENTIAL_TTL_MS) {
        credentials = await readCredentials();
        credentialsReadAt = Date.now();
      }
      const headers: Record<string, string> = { ...credentials.headers };
      if (credentials.auth)
        headers.authorization = `Basic ${Buffer.from(credentials.auth).toString("base64")}`;
      return headers;
    },
  };
}
