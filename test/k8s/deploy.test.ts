// `berth deploy`, `berth delete` and `berth k8s status` against the real control plane (test/k8s/cluster.ts):
// server-side apply, rollouts on kwok's simulated nodes, GPU placement, no-op re-deploys, prune, ownership,
// dry runs, and errors users can act on (RBAC, rejected objects, missing CRDs, unreachable servers).
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createKubeClient, type KubeClient } from "../../src/k8s/client.js";
import { deleteModels, deployModels } from "../../src/k8s/deploy.js";
import { K8sError } from "../../src/k8s/errors.js";
import { scaleDeployment } from "../../src/runtime/kubernetes.js";
import { parseSpecText } from "../../src/spec/load.js";
import { type Cluster, clusterAvailability, DEFAULT_NODES, pollUntil, startCluster } from "./cluster.js";

const availability = clusterAvailability();
if (!availability.ok) console.warn(`test/k8s/deploy skipped: ${availability.reason}`);
const title = availability.ok
  ? "berth deploy on a real control plane"
  : `berth deploy (skipped: ${availability.reason})`;

const run = promisify(execFile);
const BERTH = join(process.cwd(), "bin", "berth.js");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function berth(args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BERTH, ...args], { maxBuffer: 32 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const cpuNodes = DEFAULT_NODES.filter((node) => node.gpus === undefined).map((node) => node.name);
const gpuNodes = DEFAULT_NODES.filter((node) => node.gpus !== undefined).map((node) => node.name);

interface SpecOptions {
  name: string;
  namespace: string;
  replicas?: number;
  image?: string;
  gpu?: number;
  ingress?: boolean;
  serviceMonitor?: boolean;
  labels?: Record<string, string>;
}

/** A small spec (100m CPU) so dozens of models fit on the simulated nodes. */
function specText(options: SpecOptions): string {
  const replicas = options.replicas ?? 2;
  return `apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: ${options.name}
${options.labels ? `  labels: ${JSON.stringify(options.labels)}\n` : ""}spec:
  model: { source: tiny://tiny }
  replicas: { min: ${replicas}, max: ${replicas} }
  resources: { cpu: 100m, memory: 128Mi, gpu: ${options.gpu ?? 0} }
  service: { type: LoadBalancer, port: 80 }
${options.ingress ? `  ingress: { host: ${options.name}.example.com, className: nginx }\n` : ""}  kubernetes:
    namespace: ${options.namespace}
    image: ${options.image ?? "localhost/berth:1"}
    serviceMonitor: ${options.serviceMonitor ?? false}
`;
}

const specDir = mkdtempSync(join(tmpdir(), "berth-k8s-specs-"));
let specCounter = 0;
function specFile(...documents: string[]): string {
  const file = join(specDir, `spec-${specCounter++}.yaml`);
  writeFileSync(file, documents.join("---\n"));
  return file;
}

const metaSchema = z.looseObject({
  metadata: z.looseObject({
    name: z.string(),
    resourceVersion: z.string(),
    labels: z.record(z.string(), z.string()).optional(),
    managedFields: z.array(z.looseObject({ manager: z.string() })).optional(),
  }),
});
const listSchema = z.object({ items: z.array(metaSchema) });
const deploymentSchema = z.looseObject({
  metadata: z.looseObject({ generation: z.number(), resourceVersion: z.string() }),
  spec: z.looseObject({
    replicas: z.number(),
    template: z.looseObject({
      spec: z.looseObject({ containers: z.array(z.looseObject({ image: z.string() })) }),
    }),
  }),
  status: z.looseObject({
    observedGeneration: z.number().optional(),
    availableReplicas: z.number().optional(),
    updatedReplicas: z.number().optional(),
    conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).optional(),
  }),
});
const podListSchema = z.object({
  items: z.array(
    z.looseObject({
      metadata: z.looseObject({ name: z.string() }),
      spec: z.looseObject({ nodeName: z.string().optional() }),
      status: z.looseObject({ phase: z.string().optional() }),
    }),
  ),
});

const KINDS =
  "serviceaccounts,configmaps,services,deployments,poddisruptionbudgets,networkpolicies,ingresses";

describe.skipIf(!availability.ok)(title, () => {
  let cluster: Cluster;
  let kubeconfig: string;
  const clients: KubeClient[] = [];

  async function client(path = kubeconfig): Promise<KubeClient> {
    const created = await createKubeClient({ kubeconfig: path });
    clients.push(created);
    return created;
  }

  /** name → resourceVersion of every Berth-rendered kind in the namespace. */
  async function versions(namespace: string): Promise<Record<string, string>> {
    const list = listSchema.parse(await cluster.kubectlJson(["get", KINDS, "-n", namespace]));
    return Object.fromEntries(
      list.items.map((item) => [
        `${(item as { kind?: string }).kind}/${item.metadata.name}`,
        item.metadata.resourceVersion,
      ]),
    );
  }

  async function deployment(namespace: string, name: string) {
    return deploymentSchema.parse(await cluster.kubectlJson(["get", "deployment", name, "-n", namespace]));
  }

  async function pods(namespace: string, name: string) {
    return podListSchema.parse(
      await cluster.kubectlJson(["get", "pods", "-n", namespace, "-l", `app.kubernetes.io/instance=${name}`]),
    ).items;
  }

  /** Pods of the Deployment's current revision all Running, and no others left. */
  async function runningPods(namespace: string, name: string, count: number) {
    return pollUntil(
      async () => {
        const current = await pods(namespace, name);
        return current.length === count && current.every((pod) => pod.status.phase === "Running")
          ? current
          : undefined;
      },
      { what: `${count} running pods of ${namespace}/${name}`, timeoutMs: 120_000, intervalMs: 500 },
    );
  }

  beforeAll(async () => {
    cluster = await startCluster();
    kubeconfig = cluster.kubeconfigPath;
  });

  afterAll(async () => {
    for (const created of clients) await created.close();
    await cluster?.stop();
  });

  it("deploys the seed's shape: every object with its fields, Available on the CPU nodes, progress on stderr", async () => {
    await cluster.createNamespace("seed");
    const file = specFile(specText({ name: "gpt2", namespace: "seed", ingress: true }));
    const result = await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig, "--timeout", "2m"]);
    expect(result.code, result.stderr).toBe(0);
    for (const kind of [
      "ServiceAccount",
      "ConfigMap",
      "Service",
      "Deployment",
      "PodDisruptionBudget",
      "NetworkPolicy",
      "Ingress",
    ]) {
      expect(result.stdout).toContain(`seed/${kind}/gpt2 created`);
    }
    // Rollout progress names the generation, the replica counts and the conditions; it ends complete.
    const progress = result.stderr.split("\n").filter((line) => line.startsWith("seed/gpt2: "));
    for (const line of progress) {
      expect(line).toMatch(
        /^seed\/gpt2: (progressing|complete): generation 1 observed [01]; [0-2]\/2 updated, [0-2]\/2 available/,
      );
    }
    expect(progress.at(-1)).toMatch(
      /^seed\/gpt2: complete: generation 1 observed 1; 2\/2 updated, 2\/2 available; .*Available=True/,
    );
    expect(result.stdout).toContain("rolled out: seed/gpt2");

    const live = await deployment("seed", "gpt2");
    expect(live.spec.replicas).toBe(2);
    expect(live.status.availableReplicas).toBe(2);
    expect(live.status.conditions?.find((condition) => condition.type === "Available")?.status).toBe("True");
    const service = (await cluster.kubectlJson(["get", "service", "gpt2", "-n", "seed"])) as {
      spec: { type: string; ports: Array<{ port: number; targetPort: number }> };
    };
    expect(service.spec.type).toBe("LoadBalancer");
    expect(service.spec.ports[0]).toMatchObject({ port: 80, targetPort: 9000 });
    const ingress = (await cluster.kubectlJson(["get", "ingress", "gpt2", "-n", "seed"])) as {
      spec: { ingressClassName: string; rules: Array<{ host: string }> };
      metadata: { annotations: Record<string, string> };
    };
    expect(ingress.spec.ingressClassName).toBe("nginx");
    expect(ingress.spec.rules[0]?.host).toBe("gpt2.example.com");
    expect(ingress.metadata.annotations["nginx.ingress.kubernetes.io/proxy-buffering"]).toBe("off");
    // Field manager "berth", operation Apply: server-side apply, not a client-side create.
    const managed = metaSchema.parse(
      await cluster.kubectlJson(["get", "deployment", "gpt2", "-n", "seed", "--show-managed-fields"]),
    );
    expect(managed.metadata.managedFields?.map((field) => field.manager)).toContain("berth");

    for (const pod of await runningPods("seed", "gpt2", 2)) expect(cpuNodes).toContain(pod.spec.nodeName);

    const status = await berth(["k8s", "status", "-f", file, "--kubeconfig", kubeconfig]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain("seed/gpt2: complete, 2/2 available");
    expect(status.stdout).toMatch(/pod gpt2-\S+ Running ready on berth-cpu-\d/);
  });

  it("schedules a GPU model only onto the GPU node", async () => {
    await cluster.createNamespace("gpu");
    const kube = await client();
    const [spec] = parseSpecText(specText({ name: "llama", namespace: "gpu", gpu: 1, replicas: 3 }));
    if (!spec) throw new Error("no spec");
    await deployModels(kube, [spec], { timeoutMs: 120_000 });
    const placed = await runningPods("gpu", "llama", 3);
    for (const pod of placed) expect(gpuNodes).toContain(pod.spec.nodeName);
  });

  it("an autoscaled model gets an HPA the API server accepts, and its replica count is left to the HPA", async () => {
    await cluster.createNamespace("scaled");
    const text = specText({ name: "auto", namespace: "scaled" }).replace("min: 2, max: 2", "min: 1, max: 4");
    const file = specFile(text);
    const first = await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("scaled/HorizontalPodAutoscaler/auto created");
    const hpa = (await cluster.kubectlJson(["get", "hpa", "auto", "-n", "scaled"])) as {
      spec: {
        minReplicas: number;
        maxReplicas: number;
        metrics: Array<{ pods?: { metric: { name: string } } }>;
      };
    };
    expect(hpa.spec).toMatchObject({ minReplicas: 1, maxReplicas: 4 });
    expect(hpa.spec.metrics[0]?.pods?.metric.name).toBe("berth_requests_in_flight");
    // What an HPA does (as another field manager): a re-deploy neither conflicts with it nor undoes it.
    await cluster.kubectl(["scale", "deployment", "auto", "--replicas=3", "-n", "scaled"]);
    const again = await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("scaled/Deployment/auto unchanged");
    expect((await deployment("scaled", "auto")).spec.replicas).toBe(3);
    expect((await deployment("scaled", "auto")).status.availableReplicas).toBe(3);
  });

  it("times out a rollout that cannot finish, naming each pod's state and why it is not scheduled", async () => {
    await cluster.createNamespace("stuck");
    // Eight GPUs per replica: no simulated node has that many.
    const file = specFile(specText({ name: "huge", namespace: "stuck", gpu: 8, replicas: 1 }));
    const result = await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig, "--timeout", "5s"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /stuck\/huge: progressing: generation 1 observed [01]; [01]\/1 updated, 0\/1 available/,
    );
    expect(result.stderr).toContain(
      "BERTH_K8S_ROLLOUT_TIMEOUT: 1 of 1 deployments did not become available within 5s",
    );
    expect(result.stderr).toMatch(
      /pod huge-\S+ Pending \(not scheduled\): PodScheduled=False Unschedulable: .*Insufficient nvidia\.com\/gpu/,
    );
  });

  it("re-deploying the unchanged spec writes nothing: every resourceVersion stays", async () => {
    const file = specFile(specText({ name: "gpt2", namespace: "seed", ingress: true }));
    const before = await versions("seed");
    expect(Object.keys(before).length).toBeGreaterThanOrEqual(7);
    const result = await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig, "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { objects: Array<{ action: string }>; requests: number };
    expect(report.objects.map((object) => object.action)).toEqual(Array(7).fill("unchanged"));
    expect(await versions("seed")).toEqual(before);
  });

  it("--dry-run=server reports what would change and writes nothing", async () => {
    const before = await versions("seed");
    const changed = specFile(specText({ name: "gpt2", namespace: "seed", ingress: true, replicas: 3 }));
    const result = await berth([
      "deploy",
      "-f",
      changed,
      "--kubeconfig",
      kubeconfig,
      "--dry-run=server",
      "--prune",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("seed/Deployment/gpt2 would be configured (spec.replicas)");
    // The ConfigMap holds the spec, so it changes with it.
    expect(result.stdout).toContain("seed/ConfigMap/gpt2 would be configured (data.berth.yaml)");
    expect(result.stdout).toContain("seed/Service/gpt2 would be unchanged");
    expect(result.stdout).toContain("dry run: 2 of 7 objects would change; nothing was written");
    expect(await versions("seed")).toEqual(before);

    const fresh = specFile(specText({ name: "fresh", namespace: "seed" }));
    const create = await berth(["deploy", "-f", fresh, "--kubeconfig", kubeconfig, "--dry-run=server"]);
    expect(create.code, create.stderr).toBe(0);
    expect(create.stdout).toContain("seed/Deployment/fresh would be created");
    const left = await cluster.kubectl([
      "get",
      "deployment,service,configmap",
      "-n",
      "seed",
      "-l",
      "app.kubernetes.io/instance=fresh",
      "-o",
      "name",
    ]);
    expect(left.stdout.trim()).toBe("");
  });

  it("rolls out a replica change and an image change to Available", async () => {
    const scaled = specFile(specText({ name: "gpt2", namespace: "seed", ingress: true, replicas: 3 }));
    const scale = await berth(["deploy", "-f", scaled, "--kubeconfig", kubeconfig]);
    expect(scale.code, scale.stderr).toBe(0);
    expect(scale.stdout).toContain("seed/Deployment/gpt2 configured");
    expect((await deployment("seed", "gpt2")).status.availableReplicas).toBe(3);

    const generation = (await deployment("seed", "gpt2")).metadata.generation;
    const newImage = specFile(
      specText({ name: "gpt2", namespace: "seed", ingress: true, replicas: 3, image: "localhost/berth:2" }),
    );
    const update = await berth(["deploy", "-f", newImage, "--kubeconfig", kubeconfig]);
    expect(update.code, update.stderr).toBe(0);
    const live = await deployment("seed", "gpt2");
    expect(live.metadata.generation).toBe(generation + 1);
    expect(live.status.observedGeneration).toBe(generation + 1);
    expect(live.status.updatedReplicas).toBe(3);
    expect(live.status.availableReplicas).toBe(3);
    expect(live.spec.template.spec.containers[0]?.image).toBe("localhost/berth:2");
    // The old ReplicaSet's pods are gone: exactly three pods, all Running.
    await runningPods("seed", "gpt2", 3);
  });

  it("prunes the Ingress once the spec drops it (only with --prune), and nothing else", async () => {
    await cluster.kubectl([
      "create",
      "ingress",
      "bystander",
      "--class=nginx",
      "--rule=other.example.com/=other:80",
      "-n",
      "seed",
    ]);
    const withoutIngress = specFile(
      specText({ name: "gpt2", namespace: "seed", replicas: 3, image: "localhost/berth:2" }),
    );
    const kept = await berth(["deploy", "-f", withoutIngress, "--kubeconfig", kubeconfig]);
    expect(kept.code, kept.stderr).toBe(0);
    expect(
      (await cluster.kubectl(["get", "ingress", "gpt2", "-n", "seed", "-o", "name"])).stdout.trim(),
    ).toBe("ingress.networking.k8s.io/gpt2");

    const dryRun = await berth([
      "deploy",
      "-f",
      withoutIngress,
      "--kubeconfig",
      kubeconfig,
      "--prune",
      "--dry-run=server",
    ]);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stdout).toContain("seed/Ingress/gpt2 would be pruned");
    expect((await cluster.kubectl(["get", "ingress", "gpt2", "-n", "seed", "-o", "name"])).code).toBe(0);

    const pruned = await berth(["deploy", "-f", withoutIngress, "--kubeconfig", kubeconfig, "--prune"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain("seed/Ingress/gpt2 pruned");
    const ingresses = await cluster.kubectl(["get", "ingress", "-n", "seed", "-o", "name"]);
    expect(ingresses.stdout.trim()).toBe("ingress.networking.k8s.io/bystander");
  });

  it("does not take over an object someone else created with the same name, and writes nothing", async () => {
    await cluster.createNamespace("foreign");
    await cluster.kubectl(["create", "configmap", "taken", "--from-literal=owner=someone", "-n", "foreign"]);
    const before = await versions("foreign");
    const result = await berth([
      "deploy",
      "-f",
      specFile(specText({ name: "taken", namespace: "foreign" })),
      "--kubeconfig",
      kubeconfig,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("BERTH_K8S_NOT_OWNED");
    expect(result.stderr).toContain(
      'ConfigMap/taken in namespace "foreign" exists and Berth did not create it',
    );
    expect(result.stderr).toContain("kubectl-create");
    // Checked before the first write: not even the ServiceAccount was created.
    expect(await versions("foreign")).toEqual(before);
    const data = (await cluster.kubectlJson(["get", "configmap", "taken", "-n", "foreign"])) as {
      data: Record<string, string>;
    };
    expect(data.data).toEqual({ owner: "someone" });
  });

  it("reports a field another manager took, and takes back what `berth scale` changed", async () => {
    await cluster.createNamespace("conflict");
    const file = specFile(specText({ name: "svc", namespace: "conflict", replicas: 1 }));
    expect((await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig])).code).toBe(0);

    // berth scale's own field manager: a deploy returns the count to the spec without asking.
    const kube = await client();
    const scaled = await scaleDeployment(kube, "svc", "conflict", 2);
    expect(scaled).toMatchObject({ previousReplicas: 1, replicas: 2 });
    expect((await deployment("conflict", "svc")).spec.replicas).toBe(2);
    const back = await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig]);
    expect(back.code, back.stderr).toBe(0);
    expect((await deployment("conflict", "svc")).spec.replicas).toBe(1);

    // Someone else's change to a field Berth owns is reported, not overwritten.
    await cluster.kubectl(["set", "image", "deployment/svc", "server=localhost/hotfix:1", "-n", "conflict"]);
    const refused = await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("BERTH_K8S_CONFLICT");
    expect(refused.stderr).toMatch(/image.*conflict with "kubectl-set"/);
    expect((await deployment("conflict", "svc")).spec.template.spec.containers[0]?.image).toBe(
      "localhost/hotfix:1",
    );
    const forced = await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig, "--force-conflicts"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect((await deployment("conflict", "svc")).spec.template.spec.containers[0]?.image).toBe(
      "localhost/berth:1",
    );
  });

  it("rejects an invalid spec before sending any request", async () => {
    // A kubeconfig whose server counts connections: it must see none.
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const counting = join(specDir, "counting-kubeconfig.yaml");
    writeFileSync(
      counting,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
    );
    try {
      const invalid = specFile(
        specText({ name: "bad", namespace: "seed" }).replace("min: 2, max: 2", "min: 3, max: 2"),
      );
      const result = await berth(["deploy", "-f", invalid, "--kubeconfig", counting]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain("spec.replicas.max: must be ≥ spec.replicas.min (3)");
      expect(connections).toBe(0);
      // The same kubeconfig with a valid spec does connect (so the zero above means something).
      const valid = await berth([
        "deploy",
        "-f",
        specFile(specText({ name: "ok", namespace: "seed" })),
        "--kubeconfig",
        counting,
      ]);
      expect(valid.code).toBe(1);
      expect(connections).toBeGreaterThan(0);
    } finally {
      server.close();
    }
  });

  it("surfaces the API server's message and field path for an object it rejects", async () => {
    await cluster.createNamespace("rejected");
    const file = specFile(
      specText({ name: "labelled", namespace: "rejected", labels: { team: "not a valid label value!" } }),
    );
    const result = await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("BERTH_K8S_REJECTED");
    expect(result.stderr).toContain(
      "the API server rejected ServiceAccount/labelled: metadata.labels: Invalid value",
    );
    expect(result.stderr).toContain("not a valid label value!");
  });

  it("names the verb and resource RBAC forbids (a ServiceAccount with a narrow Role)", async () => {
    await cluster.createNamespace("narrow");
    await cluster.kubectl(["create", "serviceaccount", "deployer", "-n", "narrow"]);
    // Everything Berth needs except writing Deployments.
    await cluster.kubectl([
      "create",
      "role",
      "most",
      "-n",
      "narrow",
      "--verb=get,list,watch,create,patch,delete",
      "--resource=serviceaccounts,configmaps,services,poddisruptionbudgets.policy,networkpolicies.networking.k8s.io",
    ]);
    await cluster.kubectl([
      "create",
      "role",
      "read-deployments",
      "-n",
      "narrow",
      "--verb=get,list,watch",
      "--resource=deployments.apps",
    ]);
    for (const role of ["most", "read-deployments"]) {
      await cluster.kubectl([
        "create",
        "rolebinding",
        role,
        `--role=${role}`,
        "--serviceaccount=narrow:deployer",
        "-n",
        "narrow",
      ]);
    }
    const token = (await cluster.kubectl(["create", "token", "deployer", "-n", "narrow"])).stdout.trim();
    const narrow = await cluster.tokenKubeconfig(token);
    const result = await berth([
      "deploy",
      "-f",
      specFile(specText({ name: "denied", namespace: "narrow" })),
      "--kubeconfig",
      narrow,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("BERTH_K8S_FORBIDDEN");
    expect(result.stderr).toMatch(
      /system:serviceaccount:narrow:deployer may not (patch|create) deployments\.apps in namespace "narrow"/,
    );
    expect(result.stderr).toMatch(
      /grant the verb "(patch|create)" on resource "deployments" in API group "apps"/,
    );
  });

  it("says when the Prometheus operator's CRD is missing, and when the cluster is unreachable", async () => {
    await cluster.createNamespace("monitored");
    const file = specFile(specText({ name: "watched", namespace: "monitored", serviceMonitor: true }));
    const result = await berth(["deploy", "-f", file, "--kubeconfig", kubeconfig]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("BERTH_K8S_CRD_MISSING");
    expect(result.stderr).toContain(
      "monitoring.coreos.com/v1 ServiceMonitor: install the Prometheus operator",
    );
    const written = await cluster.kubectl([
      "get",
      KINDS,
      "-n",
      "monitored",
      "-l",
      "app.kubernetes.io/instance=watched",
      "-o",
      "name",
    ]);
    expect(written.stdout.trim()).toBe("");

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const nowhere = join(specDir, "nowhere-kubeconfig.yaml");
    writeFileSync(
      nowhere,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
    );
    const unreachable = await berth(["deploy", "-f", file, "--kubeconfig", nowhere]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(
      `BERTH_K8S_UNREACHABLE: cannot reach the Kubernetes API server at https://127.0.0.1:${port}`,
    );
    expect(unreachable.stderr).toContain("ECONNREFUSED");
  });

  it("20 models deployed concurrently all become Available; delete removes them and nothing else", async () => {
    await cluster.createNamespace("fleet");
    await cluster.kubectl(["create", "configmap", "bystander", "--from-literal=a=b", "-n", "fleet"]);
    // Another Berth model in the same namespace that the deleted spec does not name.
    const [other] = parseSpecText(specText({ name: "other", namespace: "fleet", replicas: 1 }));
    if (!other) throw new Error("no spec");
    await deployModels(await client(), [other], { timeoutMs: 120_000 });

    const names = Array.from({ length: 20 }, (_unused, index) => `model-${index}`);
    const texts = names.map((name) => specText({ name, namespace: "fleet", replicas: 1 }));
    // Twenty independent deploys at once, each with its own client, as twenty CI jobs would.
    await Promise.all(
      texts.map(async (text) => deployModels(await client(), parseSpecText(text), { timeoutMs: 240_000 })),
    );
    const deployments = z
      .object({
        items: z.array(
          deploymentSchema.extend({
            metadata: z.looseObject({
              name: z.string(),
              generation: z.number(),
              resourceVersion: z.string(),
            }),
          }),
        ),
      })
      .parse(await cluster.kubectlJson(["get", "deployments", "-n", "fleet"]));
    const available = deployments.items
      .filter((item) => item.status.availableReplicas === 1)
      .map((item) => item.metadata.name);
    expect(available.sort()).toEqual([...names, "other"].sort());

    const result = await berth(["delete", "-f", specFile(...texts), "--kubeconfig", kubeconfig]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split("\n")).toHaveLength(20 * 6);
    const left = await cluster.kubectl(["get", `${KINDS}`, "-n", "fleet", "-o", "name"]);
    const remaining = left.stdout.trim().split("\n").sort();
    expect(remaining).toContain("configmap/bystander");
    expect(remaining).toContain("deployment.apps/other");
    expect(remaining.filter((name) => /model-\d+$/.test(name))).toEqual([]);

    // Deleting again finds nothing to delete.
    const again = await deleteModels(
      await client(),
      texts.flatMap((text) => parseSpecText(text)),
    );
    expect(again).toEqual([]);
  });

  it("library errors carry stable codes (what `berth` prints comes from them)", async () => {
    const kube = await client();
    const [spec] = parseSpecText(specText({ name: "nowhere", namespace: "does-not-exist", replicas: 1 }));
    if (!spec) throw new Error("no spec");
    const error = await deployModels(kube, [spec], { timeoutMs: 10_000 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(K8sError);
    expect((error as K8sError).code).toBe("BERTH_K8S_NAMESPACE_NOT_FOUND");
  });
});
