import { mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { clusterAvailability, findBinDir, startCluster } from "../test/k8s/cluster.js";
import { type ProcessRun, runProcess } from "../test/support/run-process.js";
import { machineOf, publishResults, REPO_ROOT } from "./report.js";

const BERTH = join(REPO_ROOT, "bin", "berth.js");

type Timed = ProcessRun;

function timed(command: string, args: string[]): Promise<Timed> {
  return runProcess(command, args);
}

function must(result: Timed, what: string): Timed {
  if (result.code !== 0) throw new Error(`${what} failed (${result.code}): ${result.stderr.slice(-2000)}`);
  return result;
}

/** kubectl -v=6 logs one line per API response (client-go's round tripper). */
export function countKubectlRequests(log: string): number {
  return log
    .split("\n")
    .filter((line) => /"Response" verb=|\b(GET|POST|PUT|PATCH|DELETE) https?:\/\/\S+ \d{3}\b/.test(line))
    .length;
}

function specs(count: number, namespace: string): string {
  return Array.from(
    { length: count },
    (_unused, index) => `apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: m-${index} }
spec:
  model: { source: tiny://tiny }
  replicas: { min: 1, max: 1 }
  resources: { cpu: 50m, memory: 64Mi }
  kubernetes: { namespace: ${namespace}, image: "localhost/berth:bench" }
`,
  ).join("---\n");
}

interface Row {
  deployments: number;
  berth: { deploySeconds: number; deployRequests: number; redeploySeconds: number; redeployRequests: number };
  kubectl: {
    applySeconds: number;
    rolloutSeconds: number;
    deploySeconds: number;
    deployRequests: number;
    redeploySeconds: number;
    redeployRequests: number;
  };
}

async function main(argv: string[]): Promise<void> {
  const smoke = argv.includes("--smoke") || process.env.BENCH_SMOKE === "1";
  const listed = argv.find((arg) => arg.startsWith("--sizes="))?.split("=")[1];
  const sizes = listed ? listed.split(",").map(Number) : smoke ? [1, 3] : [1, 10, 100];
  const availability = clusterAvailability();
  if (!availability.ok) {
    console.error(`bench:k8s: no control plane: ${availability.reason}`);
    process.exitCode = 1;
    return;
  }
  const binDir = findBinDir();
  if (!binDir) throw new Error("no Kubernetes binaries (scripts/k8s-testenv/build.sh)");
  const kubectlPath = join(binDir, "kubectl");
  const startedAt = new Date();
  const loadBefore = loadavg();
  console.error(
    `bench:k8s ${smoke ? "(smoke) " : ""}— starting the control plane; sizes ${sizes.join(", ")}`,
  );
  const cluster = await startCluster();
  const work = mkdtempSync(join(tmpdir(), "berth-bench-k8s-"));
  const cacheDir = join(work, "kube-cache");
  const kubectl = (args: string[]) =>
    timed(kubectlPath, ["--kubeconfig", cluster.kubeconfigPath, "--cache-dir", cacheDir, ...args]);
  const rows: Row[] = [];
  try {
    // Warm kubectl's discovery cache, as on a workstation that has used kubectl before.
    must(await kubectl(["api-resources", "-o", "name"]), "kubectl api-resources");
    for (const count of sizes) {
      const row: Partial<Row> & { deployments: number } = { deployments: count };
      for (const tool of ["berth", "kubectl"] as const) {
        const namespace = `${tool}-${count}`;
        await cluster.createNamespace(namespace);
        const specFile = join(work, `${namespace}.yaml`);
        writeFileSync(specFile, specs(count, namespace));
        if (tool === "berth") {
          const deploy = async () => {
            const result = must(
              await timed(process.execPath, [
                BERTH,
                "deploy",
                "-f",
                specFile,
                "--kubeconfig",
                cluster.kubeconfigPath,
                "--json",
                "--timeout",
                "15m",
              ]),
              `berth deploy ${count}`,
            );
            return {
              seconds: result.seconds,
              requests: (JSON.parse(result.stdout) as { requests: number }).requests,
            };
          };
          const first = await deploy();
          const again = await deploy();
          row.berth = {
            deploySeconds: first.seconds,
            deployRequests: first.requests,
            redeploySeconds: again.seconds,
            redeployRequests: again.requests,
          };
        } else {
          // The same objects Berth applies (rendering is Berth's job; kubectl gets its output).
          const rendered = join(work, `${namespace}.rendered.yaml`);
          writeFileSync(
            rendered,
            must(await timed(process.execPath, [BERTH, "render", "-f", specFile]), "berth render").stdout,
          );
          const deploy = async () => {
            const apply = must(await kubectl(["apply", "-f", rendered, "-v=6"]), `kubectl apply ${count}`);
            const rollout = must(
              await kubectl([
                "rollout",
                "status",
                "deployment",
                "-n",
                namespace,
                "-l",
                "app.kubernetes.io/managed-by=berth",
                "--timeout=15m",
                "-v=6",
              ]),
              `kubectl rollout status ${count}`,
            );
            return {
              applySeconds: apply.seconds,
              rolloutSeconds: rollout.seconds,
              seconds: apply.seconds + rollout.seconds,
              requests: countKubectlRequests(apply.stderr) + countKubectlRequests(rollout.stderr),
            };
          };
          const first = await deploy();
          const again = await deploy();
          row.kubectl = {
            applySeconds: first.applySeconds,
            rolloutSeconds: first.rolloutSeconds,
            deploySeconds: first.seconds,
            deployRequests: first.requests,
            redeploySeconds: again.seconds,
            redeployRequests: again.requests,
          };
        }
        console.error(`  ${tool} ${count}: done`);
        // Free the nodes for the next run: the namespace goes once its pods are gone.
        must(
          await kubectl(["delete", "namespace", namespace, "--wait=true", "--timeout=10m"]),
          `delete ${namespace}`,
        );
      }
      rows.push(row as Row);
    }
  } finally {
    await cluster.stop();
  }

  const seconds = (value: number) => value.toFixed(2);
  const lines = [
    "| deployments | berth deploy s | kubectl apply + rollout s | berth requests | kubectl requests | berth ms / deployment | kubectl ms / deployment | re-deploy berth s (requests) | re-deploy kubectl s (requests) |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (row) =>
        `| ${row.deployments} | ${seconds(row.berth.deploySeconds)} | ${seconds(row.kubectl.deploySeconds)} (${seconds(row.kubectl.applySeconds)} + ${seconds(row.kubectl.rolloutSeconds)}) | ${row.berth.deployRequests} | ${row.kubectl.deployRequests} | ${((row.berth.deploySeconds * 1000) / row.deployments).toFixed(0)} | ${((row.kubectl.deploySeconds * 1000) / row.deployments).toFixed(0)} | ${seconds(row.berth.redeploySeconds)} (${row.berth.redeployRequests}) | ${seconds(row.kubectl.redeploySeconds)} (${row.kubectl.redeployRequests}) |`,
    ),
  ];
  const table = lines.join("\n");
  const markdown = [
    `\n## bench:k8s — render + apply + wait Available, ${smoke ? "smoke" : "full"}; 6 objects per model deployment`,
    "",
    table,
    "",
    "berth: one process per deploy (node start, spec load, render, apply, watch). kubectl: `kubectl apply -f` of the same" +
      " rendered YAML, then `kubectl rollout status deployment -l ...`; discovery cache warm.",
  ].join("\n");
  publishResults({
    benchmark: "k8s",
    smoke,
    startedAt,
    machine: machineOf(loadBefore),
    markdown,
    json: { smoke, sizes, results: rows },
  });
}

await main(process.argv.slice(2));
