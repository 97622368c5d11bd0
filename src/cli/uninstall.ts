// `berth uninstall`: removes what `berth install` applied (controller, gateway, RBAC, CRD, its namespace when
// install created it) and says what it removed. Refuses while ModelDeployments exist, unless --force.
import type { Command } from "commander";
import { addClusterOptions, parseTimeout } from "./install.js";
import { withKubeClient } from "./kube.js";

interface UninstallFlags {
  namespace: string;
  force?: boolean;
  json?: boolean;
  timeout: string;
  context?: string;
  kubeconfig?: string;
}

export function register(program: Command): void {
  addClusterOptions(
    program
      .command("uninstall")
      .description(
        "remove operator mode (CRD, controller, gateway, RBAC); refuses while ModelDeployments exist",
      ),
  )
    .option("--force", "also while ModelDeployments exist: they are deleted with the CRD, with all they own")
    .action(async (flags: UninstallFlags) => {
      const timeoutMs = parseTimeout(flags.timeout);
      await withKubeClient({ file: "", ...flags }, async (client) => {
        const { installRef, uninstallBerth } = await import("../k8s/install-apply.js");
        // BERTH_K8S_IN_USE (ModelDeployments exist) leaves as "CODE: message", exit 1, nothing removed.
        const result = await uninstallBerth(client, {
          namespace: flags.namespace,
          ...(flags.force ? { force: true } : {}),
          timeoutMs,
          onProgress: (line) => process.stderr.write(`${line}\n`),
        });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
          return;
        }
        const removed = result.removed.map((item) => installRef(item));
        process.stdout.write(
          removed.length === 0
            ? "berth was not installed: nothing to remove\n"
            : `removed ${removed.length} objects: ${removed.join(", ")}` +
                `${result.modelDeployments.length > 0 ? `; and with the CRD, ${result.modelDeployments.length} ModelDeployments (${result.modelDeployments.join(", ")})` : ""}\n`,
        );
      });
    });
}
