// bench:operator — N ModelDeployments from `kubectl apply` of the CRs to every one Available, reconciled by
// `berth operator` (a process with a kubeconfig, as from a laptop) on kwok's simulated nodes; the operator's
// CPU seconds and peak RSS; compared, as a ratio, with `berth render` + `kubectl apply` + `kubectl rollout
// status` of the same objects (no operator). Then requests held during a 0 → 1 scale: first token through
// the in-cluster gateway vs the warm replica's. BENCH_SMOKE=1 (or --smoke): small sizes, for CI. Rows
// print, and bench/results/ is rewritten, as each size finishes.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createKubeClient } from "../src/k8s/client.js";
import { CRD_NAME, CRD_PLURAL } from "../src/k8s/crd.js";
import { ensureTinyModel } from "../src/models/tiny.js";
import { startAutoscaler } from "../src/operator/autoscale.js";
import {
  type Cluster,
  clusterAvailability,
  findBinDir,
  pollUntil,
  type SimulatedNode,
  startCluster,
} from "../test/k8s/cluster.js";
import {
  applyModel,
  modelSpec,
  type ServedModel,
  serveModel,
  type TestEnvironment,
} from "../test/k8s/gateway-harness.js";
import { type ProcessRun, runProcess } from "../test/support/run-process.js";
import { busyNote, machineOf, REPO_ROOT, writeResults } from "./report.js";

const BERTH = join(REPO_ROOT, "bin", "berth.js");
const CLOCK_TICKS_PER_SECOND = 100;
// Pods are cheap on kwok; room for two sets of 1,000 one-replica models (the operator's namespace is
// deleted only after the kubectl baseline ran beside it) and the control plane's own.
const NODES: SimulatedNode[] = Array.from({ length: 4 }, (_unused, index) => ({
  name: `bench-node-${index}`,
  cpu: "1000",
  memory: "4Ti",
  pods: 1000,
}));

function must(result: ProcessRun, what: string): ProcessRun {
  if (result.code !== 0) throw new Error(`${what} failed (${result.code}): ${result.stderr.slice(-2000)}`);
  return result;
}

/** N specs as CRs (the berth.yaml documents, apiVersion berth.dev/v1alpha1): small, not autoscaled. */
function specs(count: number, namespace: string): string {
  return Array.from(
    { length: count },
    (_unused, index) => `apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: m-${index}, namespace: ${namespace} }
spec:
  model: { source: tiny://tiny }
  replicas: { min: 1, max: 1 }
  autoscaling: { enabled: false }
  resources: { cpu: 10m, memory: 16Mi }
  kubernetes: { image: "localhost/berth:bench" }
`,
  ).join("---\n");
}

/** CPU seconds (user + system) and peak RSS of a live process, from /proc. */
function processUsage(pid: number): { cpuSeconds: number; peakRssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After "(comm) ", field 3 (state) is index 0: utime is field 14, stime field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return { cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND, peakRssMiB: Number(hwm ?? 0) / 1024 };
}

/** Starts `berth operator` for one namespace; resolves once it reconciles (its informers have listed). */
async function startOperator(kubeconfig: string, namespace: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      BERTH,
      "operator",
      "--kubeconfig",
      kubeconfig,
      "--namespace",
      namespace,
      "--no-leader-elect",
      "--health-port",
      "0",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("reconciling ModelDeployments")) resolve();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("exit", (code) => reject(new Error(`berth operator exited ${code}: ${output.slice(-2000)}`)));
  });
  child.stdout?.removeAllListeners("data");
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

interface Row {
  modelDeployments: number;
  operator: { applySeconds: number; availableSeconds: number; cpuSeconds: number; peakRssMiB: number };
  kubectl: { renderSeconds: number; applySeconds: number; rolloutSeconds: number; totalSeconds: number };
}

/** One request held at zero replicas until the first pod is up, then one to the warm replica. */
interface WakeRound {
  /** Request sent → the autoscale loop set replicas 0 → 1. */
  scaledMs: number;
  /** Request sent → the pod appeared with an address (kwok, scheduler). */
  podMs: number;
  /** Request sent → the pod's `berth serve` stand-in answered its readiness probe. */
  standInReadyMs: number;
  /** Request sent → first streamed token, held at zero. */
  coldFirstTokenMs: number;
  /** The same request to the warm replica right after: first streamed token. */
  warmFirstTokenMs: number;
}

const s2 = (value: number) => value.toFixed(2);
const TABLE_HEAD = [
  "| ModelDeployments | operator: apply → all Available s | operator CPU s | operator peak RSS MiB | render + kubectl apply + rollout s | ratio operator / kubectl | operator ms / model |",
  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
];
function tableRow(row: Row): string {
  const { kubectl } = row;
  // Until the baseline has run (a report written between the two halves), its cells are empty.
  const baseline =
    kubectl.totalSeconds > 0
      ? `${s2(kubectl.totalSeconds)} (${s2(kubectl.renderSeconds)} + ${s2(kubectl.applySeconds)} + ${s2(kubectl.rolloutSeconds)}) | ${(row.operator.availableSeconds / kubectl.totalSeconds).toFixed(2)}x`
      : "– | –";
  return `| ${row.modelDeployments} | ${s2(row.operator.availableSeconds)} | ${s2(row.operator.cpuSeconds)} | ${row.operator.peakRssMiB.toFixed(0)} | ${baseline} | ${((row.operator.availableSeconds * 1000) / row.modelDeployments).toFixed(0)} |`;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

function wakeTable(rounds: WakeRound[]): string[] {
  if (rounds.length === 0) return [];
  const cold = median(rounds.map((round) => round.coldFirstTokenMs));
  const warm = median(rounds.map((round) => round.warmFirstTokenMs));
  return [
    `Scale from zero through the in-cluster gateway (median of ${rounds.length}): a request held at zero replicas vs the same request to the warm replica.`,
    "",
    "| request sent → | replicas 0 → 1 ms | pod has an address ms | replica ready ms | first token ms | warm replica first token ms | ratio held / warm |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    `| median | ${median(rounds.map((round) => round.scaledMs)).toFixed(0)} | ${median(rounds.map((round) => round.podMs)).toFixed(0)} | ${median(rounds.map((round) => round.standInReadyMs)).toFixed(0)} | ${cold.toFixed(0)} | ${warm.toFixed(0)} | ${(cold / warm).toFixed(1)}x |`,
  ];
}

/** First streamed token of one completion through the gateway, in ms. */
async function firstTokenMs(served: ServedModel): Promise<number> {
  const sentAt = performance.now();
  const stream = await served.client.completions.create({
    model: "tiny",
    prompt: "Hello there",
    max_tokens: 4,
    stream: true,
  });
  let first: number | undefined;
  for await (const _chunk of stream) first ??= performance.now() - sentAt;
  if (first === undefined) throw new Error("the completion streamed no token");
  return first;
}

/**
 * Requests held during a 0 → 1 scale: the data path the tests use (test/k8s/scale.test.ts), with the
 * gateway and the autoscale loop in this process and `berth serve` stand-ins for the pods, `rounds`
 * times: wait for zero replicas, time a held request's first token, then a warm request's.
 */
async function scaleFromZero(cluster: Cluster, rounds: number): Promise<WakeRound[]> {
  const namespace = "wake";
  await cluster.createNamespace(namespace);
  const [kube, tinyModel] = await Promise.all([
    createKubeClient({ kubeconfig: cluster.kubeconfigPath }),
    ensureTinyModel({ dtype: "q8_0" }),
  ]);
  const env: TestEnvironment = { cluster, kube, tinyModel, close: () => kube.close() };
  const spec = modelSpec({
    namespace,
    replicas: "{ min: 0, max: 1 }",
    autoscaling:
      "{ targetInFlight: 2, stableWindow: 4s, panicWindow: 1s, scaleDownDelay: 1s, idleToZero: 3s }",
  });
  await applyModel(env, spec, { autoscaled: true });
  const served = await serveModel(env, spec);
  const decisions: Array<{ at: number; reason: string }> = [];
  const gatewayUrl = served.gateway.url;
  const autoscaler = startAutoscaler({
    kube,
    gateways: async () => [gatewayUrl],
    syncIntervalMs: 250,
    onDecision: (_key, decision) => decisions.push({ at: Date.now(), reason: decision.reason }),
  });
  const results: WakeRound[] = [];
  try {
    await autoscaler.ready;
    autoscaler.track({ namespace, name: "tiny", deployment: spec });
    for (let round = 0; round < rounds; round++) {
      await served.waitForReadyPods("zero replicas", (pods) => pods.length === 0, 180_000);
      await served.standIns.settled();
      await pollUntil(() => (served.standIns.byPod.size === 0 ? true : undefined), {
        what: "every stand-in stopped",
        timeoutMs: 120_000,
      });
      const sentAt = Date.now();
      const coldFirstTokenMs = await firstTokenMs(served);
      const warmFirstTokenMs = await firstTokenMs(served);
      const wake = decisions.find(
        (decision) => decision.reason === "scale-from-zero" && decision.at >= sentAt,
      );
      const standIn = [...served.standIns.byPod.values()].find((candidate) => candidate.seenAt >= sentAt);
      if (!wake || !standIn?.mappedAt) throw new Error("no scale-from-zero decision or no new pod seen");
      const row: WakeRound = {
        scaledMs: wake.at - sentAt,
        podMs: standIn.seenAt - sentAt,
        standInReadyMs: standIn.mappedAt - sentAt,
        coldFirstTokenMs,
        warmFirstTokenMs,
      };
      results.push(row);
      console.error(
        `  scale from zero ${round + 1}/${rounds}: first token held ${coldFirstTokenMs.toFixed(0)} ms, warm ${warmFirstTokenMs.toFixed(0)} ms`,
      );
    }
    if (served.standIns.errors.length > 0) throw new Error(served.standIns.errors.join("\n"));
  } finally {
    await autoscaler.stop();
    await served.close();
    await env.close();
  }
  return results;
}

async function main(argv: string[]): Promise<void> {
  const smoke = argv.includes("--smoke") || process.env.BENCH_SMOKE === "1";
  const listed = argv.find((arg) => arg.startsWith("--sizes="))?.split("=")[1];
  const sizes = listed ? listed.split(",").map(Number) : smoke ? [3, 10] : [100, 1000];
  const wakeRounds = Number(
    argv.find((arg) => arg.startsWith("--wake-rounds="))?.split("=")[1] ?? (smoke ? 1 : 5),
  );
  const availability = clusterAvailability();
  if (!availability.ok) {
    console.error(`bench:operator: no control plane: ${availability.reason}`);
    process.exitCode = 1;
    return;
  }
  const binDir = findBinDir();
  if (!binDir) throw new Error("no Kubernetes binaries (scripts/k8s-testenv/build.sh)");
  const startedAt = new Date();
  const loadBefore = loadavg();
  console.error(
    `bench:operator ${smoke ? "(smoke) " : ""}— starting the control plane; sizes ${sizes.join(", ")}; ${wakeRounds} scale-from-zero rounds`,
  );
  const cluster = await startCluster({ nodes: NODES });
  const work = mkdtempSync(join(tmpdir(), "berth-bench-operator-"));
  const cacheDir = join(work, "kube-cache");
  const kubectl = (args: string[]) =>
    runProcess(join(binDir, "kubectl"), [
      "--kubeconfig",
      cluster.kubeconfigPath,
      "--cache-dir",
      cacheDir,
      ...args,
    ]);
  const rows: Row[] = [];
  let wake: WakeRound[] = [];
  // The report so far, written after every size: a run cut short still leaves the rows it finished.
  const report = (): string => {
    const machine = machineOf(loadBefore);
    const markdown = [
      `## bench:operator — ModelDeployments from kubectl apply to Available via \`berth operator\`, ${smoke ? "smoke" : "full"}`,
      "",
      ...TABLE_HEAD,
      ...rows.map(tableRow),
      "",
      "operator: `kubectl apply` of the CRs, then `kubectl wait --for=condition=Available` on all of them; `berth operator`" +
        " runs as a process with a kubeconfig (no leader election, one namespace, 4 workers); CPU and peak RSS are its" +
        " /proc utime+stime and VmHWM at the end. kubectl: `berth render` of the same specs, `kubectl apply -f`, then" +
        " `kubectl rollout status deployment -l ...`.",
      "",
      ...wakeTable(wake),
      "",
      busyNote(machine),
    ].join("\n");
    writeResults({
      benchmark: "operator",
      smoke,
      startedAt,
      markdown,
      json: { smoke, sizes, machine, results: rows, scaleFromZero: wake },
    });
    return markdown;
  };
  try {
    // Only the CRD: the operator runs here, as a process, so its CPU and memory can be read.
    must(
      await kubectl(["apply", "--server-side", "-f", join(REPO_ROOT, "deploy", "crds", `${CRD_NAME}.yaml`)]),
      "CRD",
    );
    must(
      await kubectl(["wait", "--for=condition=Established", `crd/${CRD_NAME}`, "--timeout=60s"]),
      "CRD wait",
    );
    must(await kubectl(["api-resources", "-o", "name"]), "kubectl api-resources");
    if (wakeRounds > 0) {
      wake = await scaleFromZero(cluster, wakeRounds);
      console.error(wakeTable(wake).join("\n"));
      report();
    }
    for (const count of sizes) {
      const timeout = `--timeout=${Math.max(5, Math.ceil(count / 10))}m`;
      // Operator: apply the CRs, wait until every one says Available.
      const operatorNamespace = `operator-${count}`;
      await cluster.createNamespace(operatorNamespace);
      const crFile = join(work, `${operatorNamespace}.yaml`);
      writeFileSync(crFile, specs(count, operatorNamespace));
      const operator = await startOperator(cluster.kubeconfigPath, operatorNamespace);
      const apply = must(await kubectl(["apply", "-f", crFile]), `kubectl apply ${count} CRs`);
      try {
        const wait = must(
          await kubectl([
            "wait",
            "--for=condition=Available",
            CRD_PLURAL,
            "--all",
            "-n",
            operatorNamespace,
            timeout,
          ]),
          `wait for ${count} ModelDeployments Available`,
        );
        const usage = processUsage(operator.pid as number);
        rows.push({
          modelDeployments: count,
          operator: { applySeconds: apply.seconds, availableSeconds: apply.seconds + wait.seconds, ...usage },
          kubectl: { renderSeconds: 0, applySeconds: 0, rolloutSeconds: 0, totalSeconds: 0 },
        });
      } finally {
        await stopProcess(operator);
      }
      console.error(`  operator ${count}: done`);
      report();

      // Baseline: the same specs rendered by `berth render`, applied and waited for by kubectl.
      const kubectlNamespace = `kubectl-${count}`;
      await cluster.createNamespace(kubectlNamespace);
      const specFile = join(work, `${kubectlNamespace}.yaml`);
      writeFileSync(specFile, specs(count, kubectlNamespace));
      const render = must(
        await runProcess(process.execPath, [BERTH, "render", "-f", specFile]),
        "berth render",
      );
      const rendered = join(work, `${kubectlNamespace}.rendered.yaml`);
      writeFileSync(rendered, render.stdout);
      const applied = must(await kubectl(["apply", "-f", rendered]), `kubectl apply ${count}`);
      const rollout = must(
        await kubectl([
          "rollout",
          "status",
          "deployment",
          "-n",
          kubectlNamespace,
          "-l",
          "app.kubernetes.io/managed-by=berth",
          timeout,
        ]),
        `kubectl rollout status ${count}`,
      );
      const row = rows.at(-1) as Row;
      row.kubectl = {
        renderSeconds: render.seconds,
        applySeconds: applied.seconds,
        rolloutSeconds: rollout.seconds,
        totalSeconds: render.seconds + applied.seconds + rollout.seconds,
      };
      console.error(`  kubectl ${count}: done\n${tableRow(row)}`);
      report();
      // The next size starts on empty nodes; after the last one the control plane just stops.
      if (count === sizes.at(-1)) continue;
      for (const namespace of [operatorNamespace, kubectlNamespace]) {
        must(
          await kubectl(["delete", "namespace", namespace, "--wait=true", "--timeout=15m"]),
          `delete ${namespace}`,
        );
      }
    }
  } finally {
    await cluster.stop();
  }
  console.log(`\n${report()}`);
}

await main(process.argv.slice(2));
