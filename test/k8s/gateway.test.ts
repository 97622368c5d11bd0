// The in-cluster gateway on a real control plane: it finds a ModelDeployment's replicas in the
// EndpointSlices of its Service and routes to ready endpoints only, least-load across them, and a
// rolling update (a new pod template) under load fails no request. The pods are kwok's; their
// containers are local `berth serve` stand-ins (stand-ins.ts); the client is the official openai one.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadReportSchema } from "../../src/gateway/load-endpoint.js";
import { specDocument } from "../../src/k8s/render.js";
import { pollUntil } from "./cluster.js";
import {
  applyModel,
  completionVia,
  modelSpec,
  type ServedModel,
  serveModel,
  setPodReady,
  startEnvironment,
  suite,
  type TestEnvironment,
} from "./gateway-harness.js";

const { ok, title } = suite("test/k8s/gateway", "the in-cluster gateway on a real control plane");

const NAMESPACE = "gateway";

/** `count` completions sent at once; the pods that answered, in order of the requests. */
function concurrently(served: ServedModel, count: number, maxTokens = 24): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, () => completionVia(served.client, "tiny", maxTokens)));
}

describe.skipIf(!ok).sequential(title, () => {
  let env: TestEnvironment;
  let served: ServedModel;

  beforeAll(async () => {
    env = await startEnvironment();
    await env.cluster.createNamespace(NAMESPACE);
    await applyModel(env, modelSpec({ namespace: NAMESPACE, replicas: "{ min: 2, max: 2 }" }));
    // Two spares: a pod kwok reports Ready is served at once (a rollout's new pod included).
    served = await serveModel(env, modelSpec({ namespace: NAMESPACE, replicas: "{ min: 2, max: 2 }" }), {
      spares: 2,
      log: (line) => console.log(line),
    });
  }, 300_000);

  afterAll(async () => {
    await served?.close();
    await env?.close();
  }, 120_000);

  it("lists the resource's model and routes only to ready endpoints", async () => {
    const models = await served.client.models.list();
    expect(models.data.map((model) => model.id)).toEqual(["tiny"]);
    const [first, second] = await served.waitForReadyPods("two ready endpoints", (pods) => pods.length === 2);
    if (!first || !second) throw new Error("two pods expected");

    // The second pod's readiness probe fails: its endpoint turns not-ready, and no request reaches it.
    await setPodReady(env.kube, NAMESPACE, second, false);
    await served.waitForReadyPods(`${second} out of rotation`, (pods) => pods.length === 1);
    expect(served.gateway.directory.upstreams("tiny").find((upstream) => upstream.id === second)?.state).toBe(
      "starting",
    );
    const answeredBy = await concurrently(served, 6);
    expect(new Set(answeredBy)).toEqual(new Set([first]));

    // Ready again: back in rotation.
    await setPodReady(env.kube, NAMESPACE, second, true);
    await served.waitForReadyPods(`${second} back in rotation`, (pods) => pods.length === 2);
    const afterwards = await concurrently(served, 6);
    expect(new Set(afterwards)).toEqual(new Set([first, second]));
  });

  it("balances by least load across the two stand-ins", async () => {
    const pods = await served.waitForReadyPods("two ready endpoints", (current) => current.length === 2);
    // Eight at once: each goes to the replica with fewer requests in flight, so both take half.
    const answeredBy = await concurrently(served, 8, 48);
    const counts = Object.fromEntries(pods.map((pod) => [pod, answeredBy.filter((id) => id === pod).length]));
    console.log(`least-load split of 8 concurrent requests: ${JSON.stringify(counts)}`);
    expect(answeredBy.every((id) => pods.includes(id))).toBe(true);
    for (const pod of pods) expect(counts[pod]).toBeGreaterThanOrEqual(3);
  });

  it("rolls out a new pod template under load without a failed request", async () => {
    const before = await served.waitForReadyPods("two ready endpoints", (pods) => pods.length === 2);
    let stop = false;
    const failures: string[] = [];
    const answeredBy: string[] = [];
    const worker = async () => {
      while (!stop) {
        try {
          answeredBy.push(await completionVia(served.client, "tiny", 16));
        } catch (error) {
          failures.push(error instanceof Error ? error.message : String(error));
        }
      }
    };
    const workers = Array.from({ length: 3 }, () => worker());
    try {
      await pollUntil(() => (answeredBy.length >= 6 ? true : undefined), {
        what: "load running",
        timeoutMs: 60_000,
      });
      // A new generation of the spec: engine.parallel changes the replicas' arguments (a new template).
      await applyModel(env, modelSpec({ namespace: NAMESPACE, replicas: "{ min: 2, max: 2 }", parallel: 3 }));
      const after = await served.waitForReadyPods(
        "the rollout: two ready endpoints, none of them old",
        (pods) => pods.length === 2 && pods.every((pod) => !before.includes(pod)),
        180_000,
      );
      await pollUntil(
        async () => {
          const deployment = (await env.cluster.kubectlJson([
            "get",
            "deployment",
            "tiny",
            "-n",
            NAMESPACE,
          ])) as {
            status?: { replicas?: number; updatedReplicas?: number; availableReplicas?: number };
          };
          const status = deployment.status ?? {};
          return status.replicas === 2 && status.updatedReplicas === 2 && status.availableReplicas === 2
            ? true
            : undefined;
        },
        { what: "the Deployment rolled out", timeoutMs: 120_000 },
      );
      // Requests keep flowing on the new pods.
      const served_before = answeredBy.length;
      await pollUntil(() => (answeredBy.length >= served_before + 6 ? true : undefined), {
        what: "requests on the new pods",
        timeoutMs: 60_000,
      });
      stop = true;
      await Promise.all(workers);
      console.log(
        `rolling update under load: ${answeredBy.length} requests, ${failures.length} failed; old pods ${before.join(", ")} → new ${after.join(", ")}`,
      );
      expect(failures).toEqual([]);
      expect(answeredBy.some((pod) => before.includes(pod))).toBe(true);
      expect(answeredBy.some((pod) => after.includes(pod))).toBe(true);
      await served.standIns.settled();
      expect(served.standIns.errors).toEqual([]);
    } finally {
      stop = true;
      await Promise.all(workers);
    }
  });

  it("runs as `berth gateway` with a kubeconfig, reports its load, and exits 0 on SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      [join(process.cwd(), "bin", "berth.js"), "gateway", "--kubeconfig", env.cluster.kubeconfigPath].concat([
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--namespace",
        NAMESPACE,
      ]),
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (data: string) => {
        stderr += data;
      });
      const url = await pollUntil(
        () => {
          for (const line of stderr.split("\n")) {
            if (!line.includes("gateway listening")) continue;
            return (JSON.parse(line) as { url: string }).url;
          }
          return undefined;
        },
        {
          what: "berth gateway listening",
          timeoutMs: 60_000,
          abort: () => (child.exitCode === null ? undefined : stderr),
        },
      );
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
      expect(models.data.map((model) => model.id)).toEqual(["tiny"]);
      const report = loadReportSchema.parse(await (await fetch(`${url}/api/load`)).json());
      expect(report.models.map((model) => model.model)).toEqual(["tiny"]);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("answers at once, in the operator's words, for a Degraded model with no ready endpoint", async () => {
    const broken = modelSpec({ namespace: NAMESPACE, name: "broken", replicas: "{ min: 1, max: 1 }" });
    await env.cluster.kubectl(["apply", "--server-side", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: broken.apiVersion,
        kind: broken.kind,
        metadata: { name: "broken", namespace: NAMESPACE },
        spec: specDocument(broken).spec,
      }),
    });
    const message = 'image "localhost/nope:1" cannot be pulled: not found';
    await env.kube.request({
      method: "PATCH",
      path: `/apis/berth.dev/v1alpha1/namespaces/${NAMESPACE}/modeldeployments/broken/status`,
      contentType: "application/merge-patch+json",
      body: {
        status: { conditions: [{ type: "Degraded", status: "True", reason: "ImagePullFailed", message }] },
      },
    });
    await pollUntil(() => served.gateway.directory.unavailable("broken"), {
      what: "the gateway to read the Degraded condition",
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    const failure = await served.client.completions
      .create({ model: "broken", prompt: "Hello", max_tokens: 4 })
      .then(
        () => undefined,
        (error: unknown) => error as { status?: number; message?: string },
      );
    expect(failure?.status).toBe(503);
    expect(failure?.message).toContain(message);
    // The other model is unaffected.
    expect(await completionVia(served.client)).not.toBe("");
  });
});
