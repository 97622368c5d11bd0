// `berth operator` against the real control plane (test/k8s/cluster.ts), run as real processes
// (`npm run build` first): a ModelDeployment applied with kubectl becomes the objects render.ts
// renders, owned by it (server-side apply as "berth-operator"), with status and events in words;
// updates roll out and prune; deleting it lets the garbage collector remove everything; pod faults
// (injected by patching pod status, since kwok's simulated kubelets never fail) show up as
// conditions and events; two operators elect one leader, and the other takes over when it dies.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { modelDeploymentCrd } from "../../src/k8s/crd.js";
import { renderDeployment } from "../../src/k8s/render.js";
import { parseSpecText } from "../../src/spec/load.js";
import { type Cluster, clusterAvailability, pollUntil, startCluster } from "./cluster.js";
import {
  conditionOf,
  getResource,
  installCrd,
  OperatorProcess,
  waitForResource,
} from "./operator-support.js";

const availability = clusterAvailability();
if (!availability.ok) console.warn(`test/k8s/operator skipped: ${availability.reason}`);
const title = availability.ok
  ? "berth operator on a real control plane"
  : `berth operator (skipped: ${availability.reason})`;

const SEED_SPEC = join(process.cwd(), "examples", "seed-gpt2", "berth.yaml");
const LEASE_NAMESPACE = "berth-system";

interface SpecOptions {
  name: string;
  replicas?: number;
  image?: string;
  ingress?: boolean;
  source?: string;
}

/** A small ModelDeployment (100m CPU) as kubectl applies it. */
function resourceText(options: SpecOptions): string {
  const replicas = options.replicas ?? 2;
  return `apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: ${options.name}
spec:
  model: { source: ${JSON.stringify(options.source ?? "tiny://tiny")} }
  replicas: { min: ${replicas}, max: ${replicas} }
  resources: { cpu: 100m, memory: 128Mi }
${options.ingress ? `  ingress: { host: ${options.name}.example.com, className: nginx }\n` : ""}  kubernetes:
    image: ${options.image ?? "localhost/berth:1"}
`;
}

const ownedSchema = z.object({
  items: z.array(
    z.looseObject({
      kind: z.string(),
      metadata: z.looseObject({
        name: z.string(),
        ownerReferences: z.array(z.looseObject({})).optional(),
        managedFields: z.array(z.looseObject({ manager: z.string(), operation: z.string() })).optional(),
      }),
    }),
  ),
});
const podsSchema = z.object({
  items: z.array(
    z.looseObject({
      metadata: z.looseObject({ name: z.string(), deletionTimestamp: z.string().optional() }),
      spec: z.looseObject({ containers: z.array(z.looseObject({ name: z.string(), image: z.string() })) }),
      status: z.looseObject({ phase: z.string().optional() }),
    }),
  ),
});
const eventsSchema = z.object({
  items: z.array(
    z.looseObject({
      type: z.string(),
      reason: z.string(),
      message: z.string(),
      count: z.number().optional(),
      reportingInstance: z.string().optional(),
    }),
  ),
});
const leaseSchema = z.looseObject({
  spec: z.looseObject({ holderIdentity: z.string().optional(), leaseTransitions: z.number().optional() }),
});

const RENDERED_KINDS =
  "serviceaccounts,configmaps,services,deployments,poddisruptionbudgets,networkpolicies,ingresses";

describe.skipIf(!availability.ok)(title, () => {
  let cluster: Cluster;
  const operators: OperatorProcess[] = [];

  function startOperator(identity: string, extra: readonly string[] = []): OperatorProcess {
    const operator = new OperatorProcess([
      "--kubeconfig",
      cluster.kubeconfigPath,
      "--lease-namespace",
      LEASE_NAMESPACE,
      "--identity",
      identity,
      // Several run at once (and other suites may too): each health endpoint on a free port.
      "--health-port",
      "0",
      ...extra,
    ]);
    operators.push(operator);
    return operator;
  }

  const apply = (namespace: string, text: string) =>
    cluster.kubectl(["apply", "-n", namespace, "-f", "-"], { input: text });

  async function owned(namespace: string, name: string) {
    return ownedSchema.parse(
      await cluster.kubectlJson([
        "get",
        RENDERED_KINDS,
        "-n",
        namespace,
        "-l",
        `app.kubernetes.io/instance=${name}`,
        "--show-managed-fields",
      ]),
    ).items;
  }

  async function pods(namespace: string, name: string) {
    return podsSchema
      .parse(
        await cluster.kubectlJson([
          "get",
          "pods",
          "-n",
          namespace,
          "-l",
          `app.kubernetes.io/instance=${name}`,
        ]),
      )
      .items.filter((pod) => !pod.metadata.deletionTimestamp);
  }

  async function events(namespace: string, name: string) {
    return eventsSchema.parse(
      await cluster.kubectlJson([
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        `involvedObject.kind=ModelDeployment,involvedObject.name=${name}`,
      ]),
    ).items;
  }

  /** GET on an operator's health endpoint (the URL from its start line). */
  async function probe(operator: OperatorProcess, path: string): Promise<{ status: number; body: string }> {
    const [, url] = await operator.waitFor(/health and metrics on (http:\/\/\S+)/);
    const response = await fetch(`${url}${path}`);
    return { status: response.status, body: await response.text() };
  }

  async function leaseHolder(): Promise<string> {
    const lease = leaseSchema.parse(
      await cluster.kubectlJson(["get", "lease", "berth-operator", "-n", LEASE_NAMESPACE]),
    );
    return lease.spec.holderIdentity ?? "";
  }

  /** Patches a pod's status as a kubelet would write it: the fault injection kwok cannot do itself. */
  async function injectPodStatus(namespace: string, pod: string, status: Record<string, unknown>) {
    // Phase Running: kwok's pod-ready stage re-readies only Pending pods, so the injected state stays.
    const conditions = [
      { type: "PodScheduled", status: "True" },
      { type: "Initialized", status: "False" },
      { type: "ContainersReady", status: "False" },
      { type: "Ready", status: "False" },
    ];
    await cluster.kubectl([
      "patch",
      "pod",
      pod,
      "-n",
      namespace,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { phase: "Running", conditions, ...status } }),
    ]);
  }

  beforeAll(async () => {
    cluster = await startCluster();
    await installCrd(cluster, modelDeploymentCrd());
    await cluster.createNamespace(LEASE_NAMESPACE);
  });

  afterAll(async () => {
    for (const operator of operators) operator.kill("SIGKILL");
    await Promise.all(operators.map((operator) => operator.exited));
    await cluster?.stop();
  });

  describe("one operator", () => {
    let operator: OperatorProcess;

    beforeAll(async () => {
      operator = startOperator("op-main");
      await operator.waitFor(/reconciling ModelDeployments in all namespaces/);
    });

    afterAll(() => {
      if (operator.child.exitCode === null) operator.kill("SIGKILL");
    });

    it("kubectl apply -f examples/seed-gpt2/berth.yaml gives the seed's Deployment, Service and Ingress, owned by the resource, Available once kwok's pods are Ready", async () => {
      await cluster.createNamespace("seed");
      await cluster.kubectl(["apply", "-n", "seed", "-f", SEED_SPEC]);
      const resource = await waitForResource(
        cluster,
        "seed",
        "gpt2",
        "Available",
        (found) => conditionOf(found, "Available")?.status === "True" && found.status?.readyReplicas === 2,
      );
      expect(resource.status).toMatchObject({
        observedGeneration: 1,
        replicas: 2,
        readyReplicas: 2,
        desiredReplicas: 2,
        selector: "app.kubernetes.io/name=gpt2,app.kubernetes.io/instance=gpt2",
      });
      expect(conditionOf(resource, "ModelReady")).toMatchObject({ status: "True", reason: "ModelLoaded" });
      expect(conditionOf(resource, "Degraded")).toMatchObject({ status: "False", reason: "AsExpected" });
      expect(conditionOf(resource, "Progressing")).toMatchObject({
        status: "False",
        reason: "RolloutComplete",
      });

      // Exactly what render.ts renders for the same file (no second renderer), each object owned by the resource.
      const [spec] = parseSpecText(readFileSync(SEED_SPEC, "utf8"), SEED_SPEC);
      const rendered = renderDeployment(spec!, { namespace: "seed" });
      const live = await owned("seed", "gpt2");
      expect(live.map((item) => `${item.kind}/${item.metadata.name}`).sort()).toEqual(
        rendered
          .filter((object) => object.kind !== "HorizontalPodAutoscaler")
          .map((object) => `${object.kind}/${object.metadata.name}`)
          .sort(),
      );
      for (const item of live) {
        expect(item.metadata.ownerReferences, `${item.kind}`).toEqual([
          {
            apiVersion: "berth.dev/v1alpha1",
            kind: "ModelDeployment",
            name: "gpt2",
            uid: resource.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ]);
        expect(item.metadata.managedFields?.map((field) => `${field.manager}/${field.operation}`)).toContain(
          "berth-operator/Apply",
        );
      }
      const deployment = z
        .looseObject({
          spec: z.looseObject({
            replicas: z.number(),
            template: z.looseObject({ spec: z.looseObject({ containers: z.array(z.looseObject({})) }) }),
          }),
        })
        .parse(await cluster.kubectlJson(["get", "deployment", "gpt2", "-n", "seed"]));
      const renderedDeployment = rendered.find((object) => object.kind === "Deployment") as unknown as {
        spec: { template: { spec: { containers: unknown[] } } };
      };
      expect(deployment.spec.replicas).toBe(2);
      expect(deployment.spec.template.spec.containers).toMatchObject(
        renderedDeployment.spec.template.spec.containers,
      );
      const service = await cluster.kubectlJson(["get", "service", "gpt2", "-n", "seed"]);
      expect(service).toMatchObject({
        spec: { type: "LoadBalancer", ports: [{ name: "http", port: 80, targetPort: 9000 }] },
      });
      const ingress = await cluster.kubectlJson(["get", "ingress", "gpt2", "-n", "seed"]);
      expect(ingress).toMatchObject({
        spec: {
          ingressClassName: "nginx",
          rules: [
            {
              host: "gpt2.example.com",
              http: { paths: [{ backend: { service: { name: "gpt2", port: { number: 80 } } } }] },
            },
          ],
        },
      });

      // kubectl get shows ready/desired (the CRD's printer columns read the status the operator wrote).
      const listed = (await cluster.kubectl(["get", "modeldeployments", "-n", "seed"])).stdout;
      expect(listed).toMatch(/^NAME\s+READY\s+DESIRED\s+MODEL\s+AVAILABLE\s+AGE\n/);
      expect(listed).toMatch(/\ngpt2\s+2\s+2\s+hf:\/\/openai-community\/gpt2\s+True\s+/);

      // kubectl describe lists the conditions and the operator's events.
      const described = (await cluster.kubectl(["describe", "modeldeployment", "gpt2", "-n", "seed"])).stdout;
      expect(described).toMatch(/Applied\s+.*created Deployment\/gpt2/);
      // Conditions as kubectl prints a resource's status: Message before Reason.
      expect(described).toMatch(
        /Message:\s+2\/2 replicas ready\s+Observed Generation:\s+1\s+Reason:\s+ReplicasReady/,
      );
    });

    it("an update rolls out: new generation observed, pods replaced, the dropped Ingress pruned", async () => {
      await cluster.createNamespace("update");
      await apply("update", resourceText({ name: "upd", ingress: true }));
      await waitForResource(
        cluster,
        "update",
        "upd",
        "Available",
        (found) => conditionOf(found, "Available")?.status === "True",
      );
      expect((await owned("update", "upd")).map((item) => item.kind)).toContain("Ingress");

      await apply("update", resourceText({ name: "upd", replicas: 3, image: "localhost/berth:2" }));
      const updated = await waitForResource(
        cluster,
        "update",
        "upd",
        "generation 2 rolled out",
        (found) =>
          found.status?.readyReplicas === 3 &&
          conditionOf(found, "Progressing")?.reason === "RolloutComplete" &&
          conditionOf(found, "Available")?.status === "True",
      );
      expect(updated.metadata.generation).toBe(2);
      expect(updated.status?.observedGeneration).toBe(2);
      for (const condition of updated.status?.conditions ?? []) expect(condition.observedGeneration).toBe(2);
      const running = await pollUntil(
        async () => {
          const current = await pods("update", "upd");
          return current.length === 3 &&
            current.every(
              (pod) =>
                pod.status.phase === "Running" && pod.spec.containers[0]?.image === "localhost/berth:2",
            )
            ? current
            : undefined;
        },
        { what: "3 pods of the new image", timeoutMs: 120_000, intervalMs: 250 },
      );
      expect(running).toHaveLength(3);
      expect((await owned("update", "upd")).map((item) => item.kind)).not.toContain("Ingress");
      const said = (await events("update", "upd")).map((event) => `${event.reason}: ${event.message}`);
      expect(said.some((line) => /^Applied: .*configured Deployment\/upd/.test(line))).toBe(true);
      expect(said.some((line) => /^Applied: .*pruned Ingress\/upd/.test(line))).toBe(true);
    });

    it("kubectl scale sets spec.replicas.desired through the scale subresource; the Deployment and status follow", async () => {
      await cluster.createNamespace("scale");
      await apply(
        "scale",
        resourceText({ name: "sc", replicas: 1 }).replace(
          "replicas: { min: 1, max: 1 }",
          "replicas: { min: 1, max: 4 }\n  autoscaling: { enabled: false }",
        ),
      );
      await waitForResource(
        cluster,
        "scale",
        "sc",
        "Available",
        (found) => found.status?.readyReplicas === 1,
      );
      await cluster.kubectl(["scale", "modeldeployment", "sc", "-n", "scale", "--replicas=3"]);
      const scaled = await waitForResource(
        cluster,
        "scale",
        "sc",
        "3 replicas ready",
        (found) => found.status?.readyReplicas === 3 && found.status.desiredReplicas === 3,
      );
      expect(scaled.metadata.generation).toBe(2);
      const deployment = z
        .looseObject({ spec: z.looseObject({ replicas: z.number() }) })
        .parse(await cluster.kubectlJson(["get", "deployment", "sc", "-n", "scale"]));
      expect(deployment.spec.replicas).toBe(3);
    });

    it("a model Berth autoscales gets no HorizontalPodAutoscaler, and the operator's apply leaves spec.replicas to the autoscale loop", async () => {
      await cluster.createNamespace("autoscaled");
      await apply(
        "autoscaled",
        resourceText({ name: "auto", replicas: 1 }).replace(
          "replicas: { min: 1, max: 1 }",
          "replicas: { min: 1, max: 3 }",
        ),
      );
      await waitForResource(
        cluster,
        "autoscaled",
        "auto",
        "Available",
        (found) => conditionOf(found, "Available")?.status === "True",
      );
      const hpas = z
        .object({ items: z.array(z.unknown()) })
        .parse(await cluster.kubectlJson(["get", "horizontalpodautoscalers", "-n", "autoscaled"]));
      expect(hpas.items).toEqual([]);
      const deployment = z
        .looseObject({
          metadata: z.looseObject({
            managedFields: z.array(z.looseObject({ manager: z.string(), fieldsV1: z.looseObject({}) })),
          }),
        })
        .parse(
          await cluster.kubectlJson([
            "get",
            "deployment",
            "auto",
            "-n",
            "autoscaled",
            "--show-managed-fields",
          ]),
        );
      const applied = deployment.metadata.managedFields.find((field) => field.manager === "berth-operator");
      expect(JSON.stringify(applied?.fieldsV1)).toContain('"f:template"');
      expect(JSON.stringify(applied?.fieldsV1)).not.toContain('"f:replicas"');
    });

    it("deleting the resource lets the garbage collector remove everything it owned", async () => {
      await cluster.createNamespace("gc");
      await apply("gc", resourceText({ name: "doomed", ingress: true }));
      await waitForResource(
        cluster,
        "gc",
        "doomed",
        "Available",
        (found) => conditionOf(found, "Available")?.status === "True",
      );
      expect((await owned("gc", "doomed")).length).toBeGreaterThanOrEqual(7);
      await cluster.kubectl(["delete", "modeldeployment", "doomed", "-n", "gc", "--wait=true"]);
      await pollUntil(
        async () =>
          (await owned("gc", "doomed")).length === 0 && (await pods("gc", "doomed")).length === 0
            ? true
            : undefined,
        {
          what: "the garbage collector to delete doomed's objects and pods",
          timeoutMs: 120_000,
          intervalMs: 250,
        },
      );
    });

    it("a pod stuck in ImagePullBackOff (injected) makes it Degraded, ModelReady False, with the image in words and a Warning event", async () => {
      await cluster.createNamespace("pull");
      await apply("pull", resourceText({ name: "pull", replicas: 1, image: "localhost/berth:missing" }));
      await waitForResource(
        cluster,
        "pull",
        "pull",
        "Available",
        (found) => conditionOf(found, "Available")?.status === "True",
      );
      const [pod] = await pods("pull", "pull");
      await injectPodStatus("pull", pod!.metadata.name, {
        containerStatuses: [
          {
            name: "server",
            image: "localhost/berth:missing",
            imageID: "",
            ready: false,
            restartCount: 0,
            state: {
              waiting: {
                reason: "ImagePullBackOff",
                message: 'Back-off pulling image "localhost/berth:missing": not found',
              },
            },
          },
        ],
      });
      const words = `pod ${pod!.metadata.name}: cannot pull image "localhost/berth:missing" for container server (ImagePullBackOff): Back-off pulling image "localhost/berth:missing": not found`;
      const degraded = await waitForResource(
        cluster,
        "pull",
        "pull",
        "Degraded",
        (found) => conditionOf(found, "Degraded")?.status === "True",
      );
      expect(conditionOf(degraded, "Degraded")).toMatchObject({ reason: "ImagePullFailed", message: words });
      expect(conditionOf(degraded, "ModelReady")).toMatchObject({
        status: "False",
        reason: "ImagePullFailed",
        message: words,
      });
      const described = (await cluster.kubectl(["describe", "modeldeployment", "pull", "-n", "pull"])).stdout;
      expect(described).toMatch(/Warning\s+ImagePullFailed\s+.*cannot pull image "localhost\/berth:missing"/);
    });

    it("a failing model-pull init container (injected) says why in words: the last line of its termination message", async () => {
      await cluster.createNamespace("modelpull");
      await apply(
        "modelpull",
        resourceText({ name: "mp", replicas: 1, source: "hf://openai-community/gpt3" }),
      );
      await waitForResource(
        cluster,
        "modelpull",
        "mp",
        "Available",
        (found) => conditionOf(found, "Available")?.status === "True",
      );
      const [pod] = await pods("modelpull", "mp");
      await injectPodStatus("modelpull", pod!.metadata.name, {
        initContainerStatuses: [
          {
            name: "fetch-model",
            image: "localhost/berth:1",
            imageID: "",
            ready: false,
            restartCount: 2,
            state: {
              waiting: { reason: "CrashLoopBackOff", message: "back-off 20s restarting failed container" },
            },
            lastState: {
              terminated: {
                exitCode: 1,
                reason: "Error",
                message:
                  "pulling hf://openai-community/gpt3\nberth: BERTH_MODEL_NOT_FOUND: hf://openai-community/gpt3: the repository does not exist (HTTP 404)\n",
                startedAt: "2026-12-02T18:00:00Z",
                finishedAt: "2026-12-02T18:00:01Z",
              },
            },
          },
        ],
        containerStatuses: [
          {
            name: "server",
            image: "localhost/berth:1",
            imageID: "",
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: "PodInitializing" } },
          },
        ],
      });
      const resource = await waitForResource(
        cluster,
        "modelpull",
        "mp",
        "ModelReady False",
        (found) => conditionOf(found, "ModelReady")?.status === "False",
      );
      const words = `pod ${pod!.metadata.name}: the model pull (init container fetch-model) failed with exit code 1 (Error): berth: BERTH_MODEL_NOT_FOUND: hf://openai-community/gpt3: the repository does not exist (HTTP 404) (restarted 2 times)`;
      expect(conditionOf(resource, "ModelReady")).toMatchObject({
        reason: "ModelPullFailed",
        message: words,
      });
      expect(conditionOf(resource, "Degraded")).toMatchObject({ status: "True", reason: "ModelPullFailed" });
      const warnings = (await events("modelpull", "mp")).filter((event) => event.type === "Warning");
      expect(warnings.map((event) => `${event.reason}: ${event.message}`)).toContain(
        `ModelPullFailed: ${words}`,
      );
    });

    it("a resource the API server accepts but the spec refuses is Degraded with the field named, and nothing is created", async () => {
      await cluster.createNamespace("invalid");
      await apply("invalid", resourceText({ name: "bad", source: "hf://openai-community" }));
      const resource = await waitForResource(
        cluster,
        "invalid",
        "bad",
        "Degraded",
        (found) => conditionOf(found, "Degraded")?.status === "True",
      );
      const degraded = conditionOf(resource, "Degraded");
      expect(degraded?.reason).toBe("InvalidSpec");
      expect(degraded?.message).toBe(
        'the spec is invalid: spec.model.source: hf://openai-community: "openai-community" names no repository (expected hf://ORG/REPO, e.g. hf://openai-community/gpt2) (got the string "hf://openai-community")',
      );
      expect((await events("invalid", "bad")).map((event) => `${event.type} ${event.reason}`)).toContain(
        "Warning InvalidSpec",
      );
      expect(await owned("invalid", "bad")).toEqual([]);
    });

    it("a graceful stop (SIGTERM) hands the Lease back at once", async () => {
      expect(await leaseHolder()).toBe("op-main");
      operator.kill("SIGTERM");
      expect(await operator.exited).toEqual({ code: 0, signal: null });
      expect(operator.output).toMatch(/released Lease berth-system\/berth-operator/);
      expect(await leaseHolder()).toBe("");
    });
  });

  describe("two operators", () => {
    it("one leads and reconciles; SIGKILL it and the other takes the Lease over and reconciles", async () => {
      const timing = ["--lease-duration", "4s", "--renew-deadline", "3s", "--retry-period", "500ms"];
      const first = startOperator("op-a", timing);
      const second = startOperator("op-b", timing);
      await Promise.race([first.waitFor(/leading: holds Lease/), second.waitFor(/leading: holds Lease/)]);
      const holder = await leaseHolder();
      const [leader, follower] = holder === "op-a" ? [first, second] : [second, first];
      expect(["op-a", "op-b"]).toContain(holder);
      await leader.waitFor(/reconciling ModelDeployments/);

      await cluster.createNamespace("failover");
      await apply("failover", resourceText({ name: "before" }));
      await waitForResource(
        cluster,
        "failover",
        "before",
        "Available",
        (found) => conditionOf(found, "Available")?.status === "True",
      );
      // Only the leader acts: the follower never started its controller, and the events are the leader's.
      expect(follower.output).not.toMatch(/reconciling ModelDeployments/);
      // Both are ready (the leader synced, the standby reading the Lease); only the leader says it leads.
      const leaderReady = await probe(leader, "/readyz");
      expect(leaderReady.status).toBe(200);
      expect(leaderReady.body).toMatch(/^leading: informers synced, \d+ ModelDeployments\n$/);
      expect(await probe(follower, "/readyz")).toEqual({
        status: 200,
        body: `standing by: Lease held by ${holder}\n`,
      });
      expect((await probe(leader, "/metrics")).body).toMatch(/^berth_operator_leader 1$/m);
      expect((await probe(follower, "/metrics")).body).toMatch(/^berth_operator_leader 0$/m);
      expect((await probe(leader, "/metrics")).body).toMatch(
        /^berth_operator_reconcile_total\{result="success"\} [1-9]/m,
      );
      expect((await probe(follower, "/healthz")).status).toBe(200);
      const reporters = new Set((await events("failover", "before")).map((event) => event.reportingInstance));
      expect([...reporters]).toEqual([holder]);

      const killedAt = Date.now();
      leader.kill("SIGKILL");
      await leader.exited;
      const newHolder = await pollUntil(
        async () => {
          const current = await leaseHolder();
          return current !== holder && current !== "" ? current : undefined;
        },
        { what: "the other operator to take the Lease over", timeoutMs: 60_000, intervalMs: 100 },
      );
      const takeoverMs = Date.now() - killedAt;
      console.log(
        `leader ${holder} SIGKILLed; ${newHolder} held the Lease ${takeoverMs} ms later (lease duration 4 s)`,
      );
      expect(newHolder).toBe(holder === "op-a" ? "op-b" : "op-a");
      await follower.waitFor(/reconciling ModelDeployments/);

      await apply("failover", resourceText({ name: "after" }));
      await waitForResource(
        cluster,
        "failover",
        "after",
        "Available",
        (found) => conditionOf(found, "Available")?.status === "True",
      );
      expect(new Set((await events("failover", "after")).map((event) => event.reportingInstance))).toEqual(
        new Set([newHolder]),
      );
      // The resource reconciled by the dead leader is still owned and whole.
      expect(conditionOf(await getResource(cluster, "failover", "before"), "Available")?.status).toBe("True");
    });
  });
});
