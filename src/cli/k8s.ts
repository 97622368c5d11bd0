// `berth k8s status -f FILE`: the Kubernetes side of day-two operations, kept under its own command so
// it does not collide with the local `berth status`; that command can call kubernetesModelStatus too.
import type { Command } from "commander";
import { addKubeOptions, type KubeFlags, loadDeployments, withKubeClient } from "./kube.js";

export function register(program: Command): void {
  const k8s = program.command("k8s").description("model deployments on Kubernetes (see also deploy, delete)");
  addKubeOptions(
    k8s
      .command("status")
      .description("rollout, replicas, autoscaler and pods of a spec's models on Kubernetes"),
  ).action(async (flags: KubeFlags) => {
    const deployments = await loadDeployments(flags.file);
    await withKubeClient(flags, async (client) => {
      const { kubernetesModelStatus, formatModelStatus } = await import("../k8s/status.js");
      const { targetNamespace } = await import("../k8s/deploy.js");
      const options = flags.namespace === undefined ? {} : { namespace: flags.namespace };
      const statuses = await Promise.all(
        deployments.map((deployment) =>
          kubernetesModelStatus(
            client,
            targetNamespace(client, deployment, options),
            deployment.metadata.name,
          ),
        ),
      );
      if (flags.json) process.stdout.write(`${JSON.stringify(statuses, null, 2)}\n`);
      else for (const status of statuses) process.stdout.write(formatModelStatus(status));
    });
  });
}
