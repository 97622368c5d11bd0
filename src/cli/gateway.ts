// `berth gateway`: the gateway in a cluster (what the berth-gateway Deployment runs): routes every
// ModelDeployment's API to its ready endpoints, holds requests at zero replicas, publishes its load
// at /api/load for the operator's autoscale loop. In-cluster config, or a kubeconfig from a laptop.
import type { Command } from "commander";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";

interface GatewayFlags {
  host: string;
  port: string;
  namespace?: string;
  context?: string;
  kubeconfig?: string;
  logFormat: string;
}

// A drain that takes longer than this (the gateway's own grace is 30 s) is cut short.
const SHUTDOWN_DEADLINE_MS = 60_000;

export function register(program: Command): void {
  program
    .command("gateway")
    .description("run the gateway in a cluster: routes to ModelDeployments' ready endpoints, holds at zero")
    .option("--host <host>", "address to listen on (auth is on by default beyond loopback)", "0.0.0.0")
    .option("--port <port>", "port to listen on (0 picks a free one)", "8080")
    .option("-n, --namespace <namespace>", "serve the ModelDeployments of one namespace (default: all)")
    .option("--context <name>", "kube context (default: in-cluster, else the kubeconfig's current context)")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    .option("--log-format <format>", "json, ecs or pretty", "json")
    .action(async (flags: GatewayFlags) => {
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new CliError(`--port must be a port number (0-65535), not "${flags.port}"`, EXIT_USAGE);
      const [{ createLogger, resolveLogFormat }, { createKubeClient }, { K8sError }] = await Promise.all([
        import("../util/log.js"),
        import("../k8s/client.js"),
        import("../k8s/errors.js"),
      ]);
      const format = resolveLogFormat(flags.logFormat, false);
      if (format === undefined)
        throw new CliError(`--log-format must be json, ecs or pretty, not "${flags.logFormat}"`, EXIT_USAGE);
      const logger = createLogger({ name: "berth-gateway" }, process.stderr, format);
      let kube: Awaited<ReturnType<typeof createKubeClient>>;
      try {
        kube = await createKubeClient({
          ...(flags.kubeconfig === undefined ? {} : { kubeconfig: flags.kubeconfig }),
          ...(flags.context === undefined ? {} : { context: flags.context }),
        });
      } catch (error) {
        if (error instanceof K8sError) throw new CliError(`${error.code}: ${error.message}`, EXIT_USAGE);
        throw error;
      }
      const { startClusterGateway } = await import("../gateway/cluster-gateway.js");
      let handle: Awaited<ReturnType<typeof startClusterGateway>>;
      try {
        handle = await startClusterGateway({
          kube,
          logger,
          host: flags.host,
          port,
          ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
        });
      } catch (error) {
        await kube.close();
        if (error instanceof K8sError) throw new CliError(`${error.code}: ${error.message}`, EXIT_FAILURE);
        if ((error as NodeJS.ErrnoException).code === "EADDRINUSE")
          throw new CliError(`${flags.host}:${port} is already in use (--port picks another)`, EXIT_FAILURE);
        throw error;
      }
      logger.info(
        { url: handle.url, server: kube.server, namespace: flags.namespace ?? "(all)" },
        "gateway listening",
      );
      await new Promise<void>((resolve) => {
        const onSignal = (signal: NodeJS.Signals) => {
          process.off("SIGTERM", onSignal);
          process.off("SIGINT", onSignal);
          logger.info({ signal }, "draining: held requests get 503, requests in flight finish");
          const deadline = setTimeout(() => {
            logger.error("shutdown took too long; exiting");
            process.exit(EXIT_FAILURE);
          }, SHUTDOWN_DEADLINE_MS);
          deadline.unref();
          handle
            .close()
            .then(() => kube.close())
            .then(resolve, (error: unknown) => {
              logger.error({ err: error }, "shutdown failed");
              process.exitCode = EXIT_FAILURE;
              resolve();
            });
        };
        process.on("SIGTERM", onSignal);
        process.on("SIGINT", onSignal);
      });
    });
}
