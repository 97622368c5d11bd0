// The gateway in a cluster (`berth gateway`): the local gateway app unchanged, with replicas from
// EndpointSlices (KubernetesDirectory) and its load published at /api/load for the autoscale loop.
import { hostname } from "node:os";
import type { KubeClient } from "../k8s/client.js";
import type { Logger } from "../util/log.js";
import { buildGateway, type Gateway, type GatewayOptions } from "./app.js";
import { type AddressResolver, KubernetesDirectory } from "./k8s-directory.js";
import { registerLoadEndpoint } from "./load-endpoint.js";

export interface ClusterGatewayOptions {
  kube: KubeClient;
  logger: Logger;
  host: string;
  port: number;
  /** Serve the ModelDeployments of one namespace; default all. */
  namespace?: string;
  /** How this gateway names itself in its load reports; default the host name (the pod's name). */
  name?: string;
  /** Test seam only (see AddressResolver). */
  resolveAddress?: AddressResolver;
  /** More gateway settings (hold, proxy, timeouts), as for the local gateway. */
  gateway?: Omit<GatewayOptions, "directory" | "logger" | "host" | "port">;
}

export interface ClusterGateway {
  url: string;
  gateway: Gateway;
  directory: KubernetesDirectory;
  /** Drains the gateway (held requests get 503, requests in flight finish), then stops watching. */
  close(): Promise<void>;
}

export async function startClusterGateway(options: ClusterGatewayOptions): Promise<ClusterGateway> {
  const { logger } = options;
  const directory = new KubernetesDirectory({
    kube: options.kube,
    logger: logger.child({ component: "directory" }),
    ...(options.namespace === undefined ? {} : { namespace: options.namespace }),
    ...(options.resolveAddress === undefined ? {} : { resolveAddress: options.resolveAddress }),
  });
  // Built before the first list: one resource with bad auth settings must not keep the gateway (and
  // every other model) down. Such a model's requests fail with the reason logged below instead.
  const gateway = await buildGateway({
    history: {},
    ...options.gateway,
    directory,
    logger,
    host: options.host,
    port: options.port,
  });
  let lastConfigProblem: string | undefined;
  const unsubscribe = directory.onChange(() => {
    gateway.checkConfig().then(
      () => {
        lastConfigProblem = undefined;
      },
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        if (message !== lastConfigProblem) logger.error({ err: error }, message);
        lastConfigProblem = message;
      },
    );
  });
  const closeLoad = registerLoadEndpoint(gateway.app, {
    gateway: options.name ?? hostname(),
    load: gateway.load,
    models: () => directory.models(),
    onWake: (listener) => directory.onWake(listener),
  });
  let url: string;
  try {
    // Listening only once both lists are in: a gateway that answers is a gateway that knows the models.
    await directory.start();
    url = await gateway.listen();
  } catch (error) {
    unsubscribe();
    closeLoad();
    await Promise.all([gateway.close(), directory.stop()]);
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    gateway,
    directory,
    close() {
      closing ??= (async () => {
        unsubscribe();
        closeLoad();
        await gateway.close();
        await directory.stop();
      })();
      return closing;
    },
  };
}
