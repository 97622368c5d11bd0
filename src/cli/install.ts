// `berth install`: the CRD, the controller and gateway Deployments, their ServiceAccounts and RBAC, and the
// gateway Service, applied to the kube context (waits for the CRD to be Established); --dry-run -o yaml prints
// every object instead, --helm DIR writes them as a Helm chart. Progress to stderr, the result to stdout.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { stringify } from "yaml";
import { API_KEYS_MOUNT, INSTALL_NAMESPACE, type InstallOptions, installObjects } from "../k8s/install.js";
import { parseDuration } from "../spec/units.js";
import { CliError, EXIT_USAGE } from "./errors.js";
import { withKubeClient } from "./kube.js";

interface InstallFlags {
  namespace: string;
  image?: string;
  imagePullPolicy?: string;
  operatorReplicas?: string;
  gatewayReplicas?: string;
  apiKeysSecret?: string;
  dryRun?: boolean;
  output?: string;
  helm?: string;
  json?: boolean;
  timeout: string;
  context?: string;
  kubeconfig?: string;
}

/** Options both commands share: where, and which cluster. */
export function addClusterOptions(command: Command): Command {
  return command
    .option("-n, --namespace <namespace>", "namespace of the controller and gateway", INSTALL_NAMESPACE)
    .option("--context <name>", "kube context (default: the kubeconfig's current context)")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    .option("--timeout <duration>", "how long to wait (CRD Established, objects gone)", "2m")
    .option("--json", "print the result as JSON");
}

export function parseTimeout(text: string): number {
  const timeoutMs = parseDuration(text);
  if (timeoutMs === undefined) throw new CliError(`--timeout: not a duration: ${text}`, EXIT_USAGE);
  return timeoutMs;
}

function replicasFlag(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 100) {
    throw new CliError(`--${name} must be a whole number 0..100, not "${text}"`, EXIT_USAGE);
  }
  return value;
}

function installOptions(flags: InstallFlags): InstallOptions {
  const policies = ["Always", "IfNotPresent", "Never"] as const;
  const policy = flags.imagePullPolicy;
  if (policy !== undefined && !policies.includes(policy as (typeof policies)[number])) {
    throw new CliError(
      `--image-pull-policy must be one of ${policies.join(", ")}, not "${policy}"`,
      EXIT_USAGE,
    );
  }
  const operatorReplicas = replicasFlag("operator-replicas", flags.operatorReplicas);
  const gatewayReplicas = replicasFlag("gateway-replicas", flags.gatewayReplicas);
  const secret = flags.apiKeysSecret;
  if (secret !== undefined && (secret.length > 253 || !SECRET_NAME.test(secret))) {
    throw new CliError(
      `--api-keys-secret must be a Secret name (lower-case letters, digits, '-' and '.'), not "${secret}"`,
      EXIT_USAGE,
    );
  }
  return {
    namespace: flags.namespace,
    ...(flags.image === undefined ? {} : { image: flags.image }),
    ...(policy === undefined ? {} : { imagePullPolicy: policy as (typeof policies)[number] }),
    ...(operatorReplicas === undefined ? {} : { operatorReplicas }),
    ...(gatewayReplicas === undefined ? {} : { gatewayReplicas }),
    ...(secret === undefined ? {} : { apiKeysSecret: secret }),
  };
}

// A DNS-1123 subdomain, what the API server accepts as a Secret's name.
const SECRET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const API_KEYS_HELP = `
API keys for the gateway: a Secret in the install namespace whose value lists them, one a line ("NAME KEY" or KEY):
  kubectl create namespace berth-system
  kubectl -n berth-system create secret generic berth-api-keys --from-file=BERTH_API_KEYS=./keys.txt
  berth install --api-keys-secret berth-api-keys
The gateway mounts it at ${API_KEYS_MOUNT} and gets its keys as environment variables, so a ModelDeployment
says spec.auth.apiKeysFrom: file:${API_KEYS_MOUNT}/BERTH_API_KEYS (or env:BERTH_API_KEYS). Give the flag on
every install: an install without it takes the Secret away (in the Helm chart: --set gateway.apiKeysSecret=NAME).
After changing the Secret: kubectl -n berth-system rollout restart deployment/berth-gateway
`;

export function register(program: Command): void {
  addClusterOptions(
    program
      .command("install")
      .description("install operator mode: the ModelDeployment CRD, controller, gateway and their RBAC"),
  )
    .option("--image <ref>", "container image of the controller and gateway (berth)")
    .option("--image-pull-policy <policy>", "Always, IfNotPresent or Never")
    .option("--operator-replicas <n>", "controller replicas (one leads, the others wait on the Lease)")
    .option("--gateway-replicas <n>", "gateway replicas")
    .option(
      "--api-keys-secret <name>",
      `Secret with the gateway's API keys, mounted at ${API_KEYS_MOUNT} and set as env (see below)`,
    )
    .option("--dry-run", "change nothing: list the objects (with -o, print them)")
    .option(
      "-o, --output <format>",
      "with --dry-run: print every object as yaml (multi-document) or json (a List)",
    )
    .option("--helm <dir>", "write the same objects as a Helm chart to DIR instead of installing")
    .addHelpText("after", API_KEYS_HELP)
    .action(async (flags: InstallFlags) => {
      const options = installOptions(flags);
      const timeoutMs = parseTimeout(flags.timeout);
      if (flags.output !== undefined && flags.output !== "yaml" && flags.output !== "json") {
        throw new CliError(`-o must be yaml or json, not "${flags.output}"`, EXIT_USAGE);
      }
      if (flags.output !== undefined && !flags.dryRun) {
        throw new CliError("-o prints the objects instead of installing them: add --dry-run", EXIT_USAGE);
      }
      if (flags.helm !== undefined) {
        const { operatorChart } = await import("../k8s/helm-operator.js");
        const files = operatorChart(options);
        for (const [path, text] of files) {
          const target = join(flags.helm, path);
          await mkdir(dirname(target), { recursive: true });
          await writeFile(target, text);
        }
        process.stderr.write(`wrote Helm chart "berth-operator" (${files.size} files) to ${flags.helm}\n`);
        return;
      }
      if (flags.dryRun) {
        printObjects(installObjects(options), flags.output ?? (flags.json ? "json" : undefined));
        return;
      }
      await withKubeClient({ file: "", ...flags }, async (client) => {
        const { installBerth, installRef } = await import("../k8s/install-apply.js");
        const objects = await installBerth(client, {
          ...options,
          timeoutMs,
          onProgress: (line) => process.stderr.write(`${line}\n`),
        });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ namespace: flags.namespace, objects }, null, 2)}\n`);
          return;
        }
        const changed = objects.filter(
          (object) => object.action === "created" || object.action === "configured",
        );
        process.stdout.write(
          `berth installed in namespace "${flags.namespace}": ${changed.length} of ${objects.length} objects created or changed` +
            `${changed.length > 0 ? ` (${changed.map((object) => installRef(object)).join(", ")})` : ""}\n`,
        );
      });
    });
}

function printObjects(objects: ReturnType<typeof installObjects>, format: string | undefined): void {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }, null, 2)}\n`);
  } else if (format === "yaml") {
    process.stdout.write(
      objects
        .map((object) => stringify(object, { lineWidth: 0, aliasDuplicateObjects: false }))
        .join("---\n"),
    );
  } else {
    for (const object of objects) {
      const where = object.metadata.namespace ? `${object.metadata.namespace}/` : "";
      process.stdout.write(`would apply ${where}${object.kind}/${object.metadata.name}\n`);
    }
    process.stdout.write(`dry run: ${objects.length} objects; nothing was changed (-o yaml prints them)\n`);
  }
}
