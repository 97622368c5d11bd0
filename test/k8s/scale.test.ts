// The autoscale loop on a real control plane: it reads the in-cluster gateway's load, decides with
// the autoscaler `berth up` uses, and sets the Deployment's replicas through the scale subresource:
// to zero after idleToZero, and back to one as soon as a request is held, which is then answered
// once the new pod's stand-in is ready. A spec that asks for a CPU HPA is left to the HPA.
// Driven directly (as the leading operator would): the test applies the resource and its objects.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUTOSCALER_FIELD_MANAGER, type Autoscaler, startAutoscaler } from "../../src/operator/autoscale.js";
import { pollUntil } from "./cluster.js";
import {
  applyModel,
  modelSpec,
  type ServedModel,
  serveModel,
  startEnvironment,
  suite,
  type TestEnvironment,
} from "./gateway-harness.js";

const { ok, title } = suite("test/k8s/scale", "the autoscale loop on a real control plane");

const NAMESPACE = "scale";
const SCALE_TO_ZERO = modelSpec({
  namespace: NAMESPACE,
  replicas: "{ min: 0, max: 2 }",
  autoscaling: "{ targetInFlight: 2, stableWindow: 4s, panicWindow: 1s, scaleDownDelay: 2s, idleToZero: 5s }",
});
const CPU_HPA = modelSpec({
  namespace: NAMESPACE,
  name: "cpu-hpa",
  replicas: "{ min: 1, max: 3 }",
  extra: "  kubernetes: { autoscalingMetric: cpu }\n",
});

interface Decision {
  at: number;
  key: string;
  reason: string;
  desired: number;
  previous: number;
}

describe.skipIf(!ok).sequential(title, () => {
  let env: TestEnvironment;
  let served: ServedModel;
  let autoscaler: Autoscaler;
  const decisions: Decision[] = [];

  async function deploymentReplicas(name: string): Promise<number | undefined> {
    const deployment = (await env.cluster.kubectlJson(["get", "deployment", name, "-n", NAMESPACE])) as {
      spec?: { replicas?: number };
    };
    return deployment.spec?.replicas;
  }

  beforeAll(async () => {
    env = await startEnvironment();
    await env.cluster.createNamespace(NAMESPACE);
    await applyModel(env, SCALE_TO_ZERO, { autoscaled: true });
    await applyModel(env, CPU_HPA);
    // No spares: a pod's stand-in starts when the pod appears (a cold start, as after a scale from zero).
    served = await serveModel(env, SCALE_TO_ZERO, { log: (line) => console.log(line) });
    const gatewayUrl = served.gateway.url;
    const started = startAutoscaler({
      kube: env.kube,
      gateways: async () => [gatewayUrl],
      syncIntervalMs: 250,
      onDecision: (key, decision) => decisions.push({ at: Date.now(), key, ...decision }),
    });
    autoscaler = started;
    await started.ready;
    autoscaler.track({ namespace: NAMESPACE, name: "tiny", deployment: SCALE_TO_ZERO });
    autoscaler.track({ namespace: NAMESPACE, name: "cpu-hpa", deployment: CPU_HPA });
  }, 300_000);

  afterAll(async () => {
    await autoscaler?.stop();
    await served?.close();
    await env?.close();
  }, 120_000);

  it("scales to zero after idleToZero through the scale subresource", async () => {
    await pollUntil(async () => ((await deploymentReplicas("tiny")) === 0 ? true : undefined), {
      what: "the Deployment at zero replicas",
      timeoutMs: 120_000,
    });
    expect(
      decisions.some(
        (decision) => decision.key === `${NAMESPACE}/tiny` && decision.reason === "scale-to-zero",
      ),
    ).toBe(true);
    await served.waitForReadyPods("no endpoint left", (pods) => pods.length === 0);
    await served.standIns.settled();
    expect(served.standIns.byPod.size).toBe(0);
  });

  it("holds a request at zero, scales 0 → 1 at once, and answers it when the pod is ready", async () => {
    const sentAt = Date.now();
    const completion = await served.client.completions
      .create({ model: "tiny", prompt: "Hello", max_tokens: 4 })
      .withResponse();
    const answeredAt = Date.now();
    expect(completion.data.choices).toHaveLength(1);
    const pod = completion.response.headers.get("x-berth-replica") ?? "";
    const wake = decisions.find(
      (decision) =>
        decision.key === `${NAMESPACE}/tiny` &&
        decision.reason === "scale-from-zero" &&
        decision.at >= sentAt,
    );
    expect(wake?.desired).toBe(1);
    expect(await deploymentReplicas("tiny")).toBe(1);
    const standIn = served.standIns.byPod.get(pod);
    expect(standIn).toBeDefined();
    console.log(
      `scale from zero: request held → scaled 0→1 after ${(wake?.at ?? 0) - sentAt} ms; pod seen after ${(standIn?.seenAt ?? 0) - sentAt} ms; stand-in ready after ${(standIn?.mappedAt ?? 0) - sentAt} ms; answered after ${answeredAt - sentAt} ms`,
    );
  });

  it("leaves a spec that asks for a CPU HPA to the HPA", async () => {
    // The loop has decided for the other model many times by now; this one it never tracked.
    expect(decisions.filter((decision) => decision.key === `${NAMESPACE}/tiny`).length).toBeGreaterThan(0);
    expect(autoscaler.desired(`${NAMESPACE}/cpu-hpa`)).toBeUndefined();
    expect(autoscaler.desired(`${NAMESPACE}/tiny`)).toBeDefined();
    expect(decisions.filter((decision) => decision.key === `${NAMESPACE}/cpu-hpa`)).toEqual([]);
    const deployment = (await env.cluster.kubectlJson([
      "get",
      "deployment",
      "cpu-hpa",
      "-n",
      NAMESPACE,
      "--show-managed-fields",
    ])) as {
      metadata: { managedFields?: Array<{ manager: string }> };
    };
    expect(deployment.metadata.managedFields?.map((entry) => entry.manager)).not.toContain(
      AUTOSCALER_FIELD_MANAGER,
    );
  });
});
