// A model on the test cluster as operator mode runs it, for the gateway and scaling tests: the
// ModelDeployment CRD and resource, the objects render.ts makes for it (applied by the test, as the
// operator would), stand-in `berth serve` processes for its pods (stand-ins.ts), and the in-cluster
// gateway (`berth gateway`'s startClusterGateway) in this process, its address seam pointed at them.
import OpenAI from "openai";
import { type ClusterGateway, startClusterGateway } from "../../src/gateway/cluster-gateway.js";
import { createKubeClient, type KubeClient } from "../../src/k8s/client.js";
import { modelDeploymentCrd } from "../../src/k8s/crd.js";
import { renderDeployment, specDocument } from "../../src/k8s/render.js";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { type ModelDeployment, parseSpecText } from "../../src/spec/index.js";
import { createLogger } from "../../src/util/log.js";
import { type Cluster, clusterAvailability, pollUntil, startCluster } from "./cluster.js";
import { type StandIns, startStandIns } from "./stand-ins.js";

export { setPodReady } from "./stand-ins.js";

/** Whether the suite can run here, and its title (saying why it is skipped when it cannot). */
export function suite(file: string, title: string): { ok: boolean; title: string } {
  const availability = clusterAvailability();
  if (availability.ok) return { ok: true, title };
  console.warn(`${file} skipped: ${availability.reason}`);
  return { ok: false, title: `${title} (skipped: ${availability.reason})` };
}

export interface ModelOptions {
  namespace: string;
  name?: string;
  replicas: string;
  autoscaling?: string;
  parallel?: number;
  /** More spec fields, indented two spaces. */
  extra?: string;
}

export function modelSpec(options: ModelOptions): ModelDeployment {
  const [deployment] = parseSpecText(`apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: ${options.name ?? "tiny"}, namespace: ${options.namespace} }
spec:
  model: { source: "tiny://tiny?dtype=q8_0", contextSize: 256 }
  engine: { parallel: ${options.parallel ?? 2}, threads: 1 }
  replicas: ${options.replicas}
  autoscaling: ${options.autoscaling ?? "{ enabled: false }"}
  resources: { cpu: 100m, memory: 128Mi }
  auth: { enabled: false }
${options.extra ?? ""}`);
  if (!deployment) throw new Error("no spec");
  return deployment;
}

export interface TestEnvironment {
  cluster: Cluster;
  kube: KubeClient;
  tinyModel: string;
  close(): Promise<void>;
}

export async function startEnvironment(): Promise<TestEnvironment> {
  const [cluster, tinyModel] = await Promise.all([startCluster(), ensureTinyModel({ dtype: "q8_0" })]);
  const kube = await createKubeClient({ kubeconfig: cluster.kubeconfigPath });
  await cluster.kubectl(["apply", "--server-side", "-f", "-"], {
    input: JSON.stringify(modelDeploymentCrd()),
  });
  await cluster.kubectl([
    "wait",
    "--for=condition=Established",
    "crd/modeldeployments.berth.dev",
    "--timeout=60s",
  ]);
  return {
    cluster,
    kube,
    tinyModel,
    async close() {
      await kube.close();
      await cluster.stop();
    },
  };
}

/**
 * Applies the resource and its rendered objects (server-side, as the operator does). With
 * `autoscaled`, the Deployment leaves spec.replicas to the autoscale loop.
 */
export async function applyModel(
  env: TestEnvironment,
  deployment: ModelDeployment,
  options: { autoscaled?: boolean } = {},
): Promise<void> {
  const namespace = deployment.metadata.namespace ?? "default";
  const resource = {
    apiVersion: deployment.apiVersion,
    kind: deployment.kind,
    metadata: { name: deployment.metadata.name, namespace },
    spec: specDocument(deployment).spec,
  };
  const objects = renderDeployment(deployment, { namespace }).map((object) => {
    if (options.autoscaled && object.kind === "Deployment")
      delete (object.spec as { replicas?: number }).replicas;
    return object;
  });
  // Berth's loop scales it: no HPA beside it (a spec asking for a CPU HPA keeps its HPA).
  const items = [
    resource,
    ...objects.filter((object) => !(options.autoscaled && object.kind === "HorizontalPodAutoscaler")),
  ];
  await env.cluster.kubectl(["apply", "--server-side", "--field-manager=berth-operator", "-f", "-"], {
    input: JSON.stringify({ apiVersion: "v1", kind: "List", items }),
  });
}

export interface ServedModel {
  gateway: ClusterGateway;
  standIns: StandIns;
  client: OpenAI;
  /** Pods the gateway routes new requests to. */
  readyPods(model?: string): string[];
  waitForReadyPods(what: string, test: (pods: string[]) => boolean, timeoutMs?: number): Promise<string[]>;
  close(): Promise<void>;
}

/** Stand-ins for the model's pods and a gateway in front of them. */
export async function serveModel(
  env: TestEnvironment,
  deployment: ModelDeployment,
  options: { spares?: number; log?: (line: string) => void } = {},
): Promise<ServedModel> {
  const namespace = deployment.metadata.namespace ?? "default";
  const model = deployment.spec.model.servedName ?? deployment.metadata.name;
  let gateway: ClusterGateway | undefined;
  const readyPods = (name = model) =>
    (gateway?.directory.upstreams(name) ?? [])
      .filter((upstream) => upstream.state === "ready")
      .map((upstream) => upstream.id)
      .sort();
  const standIns = await startStandIns({
    kube: env.kube,
    namespace,
    selector: `app.kubernetes.io/instance=${deployment.metadata.name}`,
    port: deployment.spec.port,
    serveArgs: [
      "--model",
      env.tinyModel,
      "--parallel",
      String(deployment.spec.engine.parallel),
      "--threads",
      "1",
      "--ctx",
      String(deployment.spec.model.contextSize),
      "--model-id",
      model,
    ],
    ...(options.spares === undefined ? {} : { spares: options.spares }),
    inRotation: (pod) => readyPods().includes(pod),
    onMappingChange: () => gateway?.directory.refresh(),
    ...(options.log ? { log: options.log } : {}),
  });
  gateway = await startClusterGateway({
    kube: env.kube,
    logger: createLogger(
      { name: "test-gateway", level: process.env.BERTH_LOG_LEVEL ?? "warn" },
      process.stderr,
    ),
    host: "127.0.0.1",
    port: 0,
    namespace,
    name: "test-gateway",
    resolveAddress: (address, port) => standIns.resolveAddress(address, port),
  });
  const client = new OpenAI({
    baseURL: `${gateway.url}/v1`,
    apiKey: "unused",
    maxRetries: 0,
    timeout: 120_000,
  });
  return {
    gateway,
    standIns,
    client,
    readyPods,
    waitForReadyPods: (what, test, timeoutMs = 120_000) =>
      pollUntil(
        () => {
          const pods = readyPods();
          return test(pods) ? pods : undefined;
        },
        {
          what,
          timeoutMs,
          intervalMs: 50,
          abort: () => (standIns.errors.length > 0 ? standIns.errors.join("\n") : undefined),
        },
      ),
    async close() {
      await gateway?.close();
      await standIns.stop();
    },
  };
}

/** One completion through the gateway; resolves which pod answered. */
export async function completionVia(client: OpenAI, model = "tiny", maxTokens = 8): Promise<string> {
  // ignore_eos (Berth's, as vLLM's): every request generates max_tokens, so it stays in flight that long.
  const body = { model, prompt: "Hello there", max_tokens: maxTokens, ignore_eos: true };
  const { response } = await client.completions.create(body).withResponse();
  return response.headers.get("x-berth-replica") ?? "";
}
