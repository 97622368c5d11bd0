// `berth operator`: the ModelDeployment controller, in the cluster (its ServiceAccount) or from a
// laptop (a kubeconfig). Runs until SIGTERM/SIGINT, which stops reconciling and hands the Lease
// back at once. One line per thing it does on stdout; /healthz, /readyz and /metrics on --health-port.
import { isIP } from "node:net";
import type { Command } from "commander";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";

interface OperatorFlags {
  namespace?: string;
  context?: string;
  kubeconfig?: string;
  leaderElect: boolean;
  leaseNamespace?: string;
  leaseName: string;
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
  identity?: string;
  workers: string;
  healthPort: string;
  healthHost: string;
}

// A host name: dot-separated labels of letters, digits and inner hyphens (RFC 1123).
const HOST_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i;

/** The health endpoint's address from its flags; a bad one is a usage error (exit 2). */
function healthAddress(hostText: string, portText: string): { host: string; port: number } {
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new CliError(
      `--health-port must be a port number 0..65535 (0 picks a free one), not "${portText}"`,
      EXIT_USAGE,
    );
  }
  if (isIP(hostText) === 0 && !HOST_NAME.test(hostText)) {
    throw new CliError(`--health-host must be an IP address or a host name, not "${hostText}"`, EXIT_USAGE);
  }
  return { host: hostText, port };
}

export function register(program: Command): void {
  program
    .command("operator")
    .description("run the ModelDeployment controller (kubectl apply -f berth.yaml deploys a model)")
    .option("-n, --namespace <namespace>", "watch ModelDeployments in one namespace (default: all)")
    .option("--context <name>", "kube context (default: the kubeconfig's current context)")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else in-cluster)")
    .option("--no-leader-elect", "act at once without a Lease (only ever run one operator so)")
    .option(
      "--lease-namespace <namespace>",
      "namespace of the Lease (default: $POD_NAMESPACE, else the context's)",
    )
    .option("--lease-name <name>", "name of the Lease", "berth-operator")
    .option("--lease-duration <duration>", "how long a Lease not renewed stays with its holder", "15s")
    .option("--renew-deadline <duration>", "a leader that cannot renew for this long stops acting", "10s")
    .option("--retry-period <duration>", "how often to renew or try to acquire the Lease", "2s")
    .option("--identity <name>", "this operator's name in the Lease (default: $POD_NAME, else host-pid)")
    .option("--workers <n>", "ModelDeployments reconciled at once", "4")
    .option("--health-port <port>", "port of /healthz, /readyz and /metrics (0 picks a free one)", "8081")
    .option("--health-host <host>", "address the health and metrics endpoint listens on", "0.0.0.0")
    .action(async (flags: OperatorFlags) => {
      const { parseDuration } = await import("../spec/units.js");
      const duration = (flag: string, text: string) => {
        const ms = parseDuration(text);
        if (ms === undefined || ms <= 0) {
          throw new CliError(`--${flag} must be a duration like 15s or 500ms, not "${text}"`, EXIT_USAGE);
        }
        return ms;
      };
      const leaseDuration = duration("lease-duration", flags.leaseDuration);
      const renewDeadline = duration("renew-deadline", flags.renewDeadline);
      const retryPeriod = duration("retry-period", flags.retryPeriod);
      if (renewDeadline >= leaseDuration) {
        throw new CliError("--renew-deadline must be shorter than --lease-duration", EXIT_USAGE);
      }
      const workers = Number(flags.workers);
      if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
        throw new CliError(`--workers must be a whole number 1..64, not "${flags.workers}"`, EXIT_USAGE);
      }
      const health = healthAddress(flags.healthHost, flags.healthPort);

      const { createKubeClient } = await import("../k8s/client.js");
      const { K8sError } = await import("../k8s/errors.js");
      const { Operator } = await import("../operator/operator.js");
      const { startAutoscaler } = await import("../operator/autoscale.js");
      const { startHealthServer } = await import("../operator/health.js");
      const { createLogger } = await import("../util/log.js");
      const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
      let client: Awaited<ReturnType<typeof createKubeClient>>;
      try {
        client = await createKubeClient({
          ...(flags.kubeconfig === undefined ? {} : { kubeconfig: flags.kubeconfig }),
          ...(flags.context === undefined ? {} : { context: flags.context }),
        });
      } catch (error) {
        if (error instanceof K8sError) throw new CliError(`${error.code}: ${error.message}`, EXIT_USAGE);
        throw error;
      }
      const inCluster =
        process.env.KUBERNETES_SERVICE_HOST !== undefined &&
        flags.kubeconfig === undefined &&
        !process.env.KUBECONFIG;
      const operator = new Operator({
        client,
        ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
        workers,
        ...((flags.identity ?? process.env.POD_NAME)
          ? { identity: flags.identity ?? process.env.POD_NAME }
          : {}),
        lease: flags.leaderElect
          ? {
              namespace: flags.leaseNamespace ?? process.env.POD_NAMESPACE ?? client.defaultNamespace,
              name: flags.leaseName,
              durationMs: leaseDuration,
              renewDeadlineMs: renewDeadline,
              retryPeriodMs: retryPeriod,
            }
          : false,
        // Outside the cluster the gateway pods are reached through the API server's pod proxy.
        startAutoscaler: (kube, onDecision) =>
          startAutoscaler({
            kube,
            logger: createLogger({ name: "berth-autoscaler" }, process.stderr),
            viaApiServerProxy: !inCluster,
            onDecision: (key, decision) =>
              onDecision(
                key,
                decision.desired === decision.previous ? "Autoscaling" : "Scaled",
                decision.message,
              ),
          }),
        log,
      });
      let healthServer: Awaited<ReturnType<typeof startHealthServer>>;
      try {
        healthServer = await startHealthServer({
          ...health,
          source: operator,
          registry: operator.metrics.registry,
        });
      } catch (error) {
        await client.close();
        throw listenError(error, health);
      }
      log(
        `berth operator ${operator.identity}: API server ${client.server}, ${flags.leaderElect ? "campaigning for the Lease" : "no leader election"}, health and metrics on ${healthServer.url}`,
      );
      const stopped = new Promise<string>((resolve) => {
        process.once("SIGTERM", () => resolve("SIGTERM"));
        process.once("SIGINT", () => resolve("SIGINT"));
      });
      try {
        await operator.start();
      } catch (error) {
        await healthServer.close();
        await client.close();
        if (error instanceof K8sError) throw new CliError(`${error.code}: ${error.message}`, EXIT_FAILURE);
        throw error;
      }
      const signal = await stopped;
      log(`${signal}: stopping`);
      await operator.stop();
      await healthServer.close();
      await client.close();
      log("stopped");
    });
}

function listenError(error: unknown, { host, port }: { host: string; port: number }): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE")
    return new CliError(`${host}:${port} is already in use (--health-port picks another)`, EXIT_FAILURE);
  if (code === "EACCES")
    return new CliError(`may not listen on ${host}:${port} (--health-port picks another)`, EXIT_FAILURE);
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAI_AGAIN")
    return new CliError(`--health-host ${host} is not an address of this machine`, EXIT_USAGE);
  return error;
}
