// Proves the test control plane is a real cluster: controllers roll out Deployments onto kwok's nodes, the
// scheduler honours extended resources and taints, RBAC denies, and server-side apply tracks field owners.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  type Cluster,
  clusterAvailability,
  DEFAULT_NODES,
  GPU_RESOURCE,
  GPU_TAINT,
  KubectlError,
  pinnedVersions,
  pollUntil,
  startCluster,
} from "./cluster.js";

const availability = clusterAvailability();
if (!availability.ok) console.warn(`test/k8s skipped: ${availability.reason}`);
const title = availability.ok ? "test control plane" : `test control plane (skipped: ${availability.reason})`;

const ConditionSchema = z.object({
  type: z.string(),
  status: z.string(),
  reason: z.string().optional(),
  message: z.string().optional(),
});
const DeploymentSchema = z.object({
  status: z.object({
    availableReplicas: z.number().optional(),
    conditions: z.array(ConditionSchema).optional(),
  }),
});
const PodSchema = z.object({
  metadata: z.object({ name: z.string() }),
  spec: z.object({ nodeName: z.string().optional() }),
  status: z.object({
    phase: z.string().optional(),
    podIP: z.string().optional(),
    conditions: z.array(ConditionSchema).optional(),
  }),
});
const PodListSchema = z.object({ items: z.array(PodSchema) });
const ManagedFieldsSchema = z.object({
  metadata: z.object({
    managedFields: z.array(z.object({ manager: z.string(), operation: z.string() })),
  }),
  data: z.record(z.string(), z.string()),
});

const VersionSchema = z.object({
  clientVersion: z.object({ gitVersion: z.string() }),
  serverVersion: z.object({ gitVersion: z.string() }),
});
const ConfigMapDataSchema = z.object({ data: z.record(z.string(), z.string()) });

const cpuNodeNames = DEFAULT_NODES.filter((node) => node.gpus === undefined).map((node) => node.name);
const gpuNodeNames = DEFAULT_NODES.filter((node) => node.gpus !== undefined).map((node) => node.name);

function gpuPod(name: string, tolerateGpuTaint: boolean): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: {
      containers: [
        {
          name: "main",
          image: "registry.k8s.io/pause:3.10",
          resources: { limits: { [GPU_RESOURCE]: "1" } },
        },
      ],
      tolerations: tolerateGpuTaint ? [{ ...GPU_TAINT, operator: "Equal" }] : [],
    },
  });
}

describe.skipIf(!availability.ok)(title, () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it.skipIf(availability.ok && availability.external)("serves the pinned Kubernetes version", async () => {
    const version = VersionSchema.parse(
      JSON.parse((await cluster.kubectl(["version", "-o", "json"])).stdout),
    );
    expect(version.serverVersion.gitVersion).toBe(pinnedVersions().kubernetes);
    expect(version.clientVersion.gitVersion).toBe(pinnedVersions().kubernetes);
  });

  it("rolls a Deployment out to Available on the simulated CPU nodes", async () => {
    await cluster.createNamespace("rollout");
    await cluster.kubectl([
      "create",
      "deployment",
      "web",
      "--image=registry.k8s.io/pause:3.10",
      "--replicas=2",
      "-n",
      "rollout",
    ]);
    const deployment = await pollUntil(
      async () => {
        const current = DeploymentSchema.parse(
          await cluster.kubectlJson(["get", "deployment", "web", "-n", "rollout"]),
        );
        const available = current.status.conditions?.find((condition) => condition.type === "Available");
        return available?.status === "True" && current.status.availableReplicas === 2 ? current : undefined;
      },
      { what: "deployment web Available with 2 replicas", timeoutMs: 120_000, intervalMs: 500 },
    );
    expect(deployment.status.availableReplicas).toBe(2);

    const pods = PodListSchema.parse(
      await cluster.kubectlJson(["get", "pods", "-n", "rollout", "-l", "app=web"]),
    );
    expect(pods.items).toHaveLength(2);
    for (const pod of pods.items) {
      expect(pod.status.phase).toBe("Running");
      expect(pod.status.podIP).toMatch(/^10\.244\./);
      // The GPU node's taint keeps pods without the toleration off it.
      expect(cpuNodeNames).toContain(pod.spec.nodeName);
    }
  });

  it("schedules a Pod asking for nvidia.com/gpu only onto the GPU node, and only with the toleration", async () => {
    await cluster.createNamespace("gpu");
    await cluster.kubectl(["apply", "-n", "gpu", "-f", "-"], { input: gpuPod("tolerating", true) });
    await cluster.kubectl(["apply", "-n", "gpu", "-f", "-"], { input: gpuPod("intolerant", false) });

    const placed = await pollUntil(
      async () => {
        const pod = PodSchema.parse(await cluster.kubectlJson(["get", "pod", "tolerating", "-n", "gpu"]));
        return pod.status.phase === "Running" ? pod : undefined;
      },
      { what: "pod tolerating Running", timeoutMs: 120_000, intervalMs: 500 },
    );
    expect(gpuNodeNames).toContain(placed.spec.nodeName);

    // Without the toleration no node fits: the CPU nodes have no GPUs and the GPU node is tainted.
    const unschedulable = await pollUntil(
      async () => {
        const pod = PodSchema.parse(await cluster.kubectlJson(["get", "pod", "intolerant", "-n", "gpu"]));
        const scheduled = pod.status.conditions?.find((condition) => condition.type === "PodScheduled");
        return scheduled?.status === "False" && scheduled.reason === "Unschedulable" ? scheduled : undefined;
      },
      { what: "pod intolerant reported Unschedulable", timeoutMs: 120_000, intervalMs: 500 },
    );
    expect(unschedulable.message).toContain(`Insufficient ${GPU_RESOURCE}`);
    expect(unschedulable.message).toContain("untolerated taint");
  });

  it("denies a ServiceAccount what its Role does not grant, naming the verb and resource", async () => {
    await cluster.createNamespace("rbac");
    await cluster.kubectl(["create", "serviceaccount", "reader", "-n", "rbac"]);
    await cluster.kubectl([
      "create",
      "role",
      "pod-reader",
      "--verb=get,list",
      "--resource=pods",
      "-n",
      "rbac",
    ]);
    await cluster.kubectl([
      "create",
      "rolebinding",
      "reader-reads-pods",
      "--role=pod-reader",
      "--serviceaccount=rbac:reader",
      "-n",
      "rbac",
    ]);
    // A real token from the TokenRequest API, signed with the cluster's service-account key.
    const token = (await cluster.kubectl(["create", "token", "reader", "-n", "rbac"])).stdout.trim();
    const readerKubeconfig = await cluster.tokenKubeconfig(token);

    const allowed = await cluster.kubectl(["get", "pods", "-n", "rbac"], { kubeconfig: readerKubeconfig });
    expect(allowed.code).toBe(0);

    const configMap = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "settings" },
      data: { a: "b" },
    };
    const denied = await cluster.kubectl(["create", "-n", "rbac", "-f", "-"], {
      input: JSON.stringify(configMap),
      kubeconfig: readerKubeconfig,
      allowFailure: true,
    });
    expect(denied.code).not.toBe(0);
    // kubectl prints the API status reason: an HTTP 403 from the RBAC authorizer.
    expect(denied.stderr).toContain("Error from server (Forbidden)");
    expect(denied.stderr).toContain(
      'User "system:serviceaccount:rbac:reader" cannot create resource "configmaps" in API group "" in the namespace "rbac"',
    );
  });

  it("applies server-side, records the field manager and refuses a conflicting manager", async () => {
    await cluster.createNamespace("ssa");
    const configMap = (value: string): string =>
      JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "settings" },
        data: { mode: value },
      });
    await cluster.kubectl(["apply", "--server-side", "--field-manager=berth-test", "-n", "ssa", "-f", "-"], {
      input: configMap("first"),
    });
    const applied = ManagedFieldsSchema.parse(
      await cluster.kubectlJson(["get", "configmap", "settings", "-n", "ssa", "--show-managed-fields"]),
    );
    expect(applied.data.mode).toBe("first");
    expect(applied.metadata.managedFields).toContainEqual({ manager: "berth-test", operation: "Apply" });

    const conflicting = cluster.kubectl(
      ["apply", "--server-side", "--field-manager=someone-else", "-n", "ssa", "-f", "-"],
      {
        input: configMap("second"),
      },
    );
    await expect(conflicting).rejects.toBeInstanceOf(KubectlError);
    await expect(conflicting).rejects.toThrow(/conflict/i);
    const unchanged = ConfigMapDataSchema.parse(
      await cluster.kubectlJson(["get", "configmap", "settings", "-n", "ssa"]),
    );
    expect(unchanged.data.mode).toBe("first");
  });
});
