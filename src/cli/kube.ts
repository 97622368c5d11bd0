// Shared by the commands that talk to a cluster (deploy, delete, k8s): the kubeconfig/context/namespace
// flags, loading the spec (invalid → exit 2 before any request), and Kubernetes errors as CliErrors.
import type { Command } from "commander";
import type { KubeClient } from "../k8s/client.js";
import { loadSpecFile, type ModelDeployment, SpecError } from "../spec/index.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";

export interface KubeFlags {
  file: string;
  namespace?: string;
  context?: string;
  kubeconfig?: string;
  json?: boolean;
}

export function addKubeOptions(command: Command): Command {
  return command
    .requiredOption("-f, --file <path>", "spec file (YAML, one or more documents)")
    .option("-n, --namespace <namespace>", "namespace (default: the spec's, else the kube context's)")
    .option("--context <name>", "kube context (default: the kubeconfig's current context)")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    .option("--json", "print the result as JSON");
}

export async function loadDeployments(file: string): Promise<ModelDeployment[]> {
  try {
    return (await loadSpecFile(file)).deployments;
  } catch (error) {
    if (error instanceof SpecError) throw new CliError(error.message, EXIT_USAGE);
    throw error;
  }
}

/** Runs `task` with a client for the flags' cluster; Kubernetes errors leave as "CODE: message". */
export async function withKubeClient<T>(
  flags: KubeFlags,
  task: (client: KubeClient) => Promise<T>,
): Promise<T> {
  const { createKubeClient } = await import("../k8s/client.js");
  const { K8sError } = await import("../k8s/errors.js");
  let client: KubeClient | undefined;
  try {
    client = await createKubeClient({
      ...(flags.kubeconfig === undefined ? {} : { kubeconfig: flags.kubeconfig }),
      ...(flags.context === undefined ? {} : { context: flags.context }),
    });
    return await task(client);
  } catch (error) {
    if (error instanceof K8sError) {
      throw new CliError(
        `${error.code}: ${error.message}`,
        error.code === "BERTH_K8S_CONFIG" ? EXIT_USAGE : EXIT_FAILURE,
      );
    }
    throw error;
  } finally {
    await client?.close();
  }
}
