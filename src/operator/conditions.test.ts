import { describe, expect, it } from "vitest";
import type { DeploymentJson } from "../k8s/rollout.js";
import { computeStatus } from "./conditions.js";
import type { PodJson } from "./diagnose.js";

const now = new Date("2026-12-02T18:00:00Z");

function deployment(
  overrides: { replicas?: number; ready?: number; available?: boolean } = {},
): DeploymentJson {
  const replicas = overrides.replicas ?? 2;
  const ready = overrides.ready ?? replicas;
  return {
    metadata: { name: "gpt2", generation: 1 },
    spec: { replicas },
    status: {
      observedGeneration: 1,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: ready,
      availableReplicas: ready,
      conditions: [{ type: "Available", status: overrides.available === false ? "False" : "True" }],
    },
  };
}

function pod(name: string, status: NonNullable<PodJson["status"]>): PodJson {
  return {
    metadata: { name },
    spec: {
      initContainers: [{ name: "fetch-model", image: "ghcr.io/berth-dev/berth:0.1.0" }],
      containers: [{ name: "server", image: "ghcr.io/berth-dev/berth:0.1.0" }],
    },
    status,
  };
}

const serving = (name: string) =>
  pod(name, {
    phase: "Running",
    initContainerStatuses: [
      { name: "fetch-model", ready: true, state: { terminated: { exitCode: 0, reason: "Completed" } } },
    ],
    containerStatuses: [{ name: "server", ready: true, restartCount: 0, state: { running: {} } }],
  });

const byType = (status: ReturnType<typeof computeStatus>) =>
  Object.fromEntries(status.conditions.map((c) => [c.type, `${c.status} ${c.reason}: ${c.message}`]));

const input = { generation: 3, selector: "app.kubernetes.io/name=gpt2,app.kubernetes.io/instance=gpt2", now };

describe("computeStatus", () => {
  it("all replicas serving: Available, not progressing, not degraded, model ready; counts and selector", () => {
    const status = computeStatus({ ...input, deployment: deployment(), pods: [serving("a"), serving("b")] });
    expect(status).toMatchObject({
      observedGeneration: 3,
      replicas: 2,
      readyReplicas: 2,
      desiredReplicas: 2,
      selector: input.selector,
    });
    expect(byType(status)).toMatchObject({
      Available: "True ReplicasReady: 2/2 replicas ready",
      Degraded: "False AsExpected: no problems found",
      ModelReady: "True ModelLoaded: the model is loaded in 2 replicas",
    });
    expect(byType(status).Progressing).toMatch(/^False RolloutComplete: rolled out: generation 1/);
    for (const condition of status.conditions) expect(condition.observedGeneration).toBe(3);
  });

  it("an image that cannot be pulled is named, with the kubelet's message", () => {
    const stuck = pod("gpt2-abc", {
      phase: "Pending",
      initContainerStatuses: [
        {
          name: "fetch-model",
          image: "registry.example/berth:nope",
          ready: false,
          state: {
            waiting: {
              reason: "ImagePullBackOff",
              message: 'Back-off pulling image "registry.example/berth:nope"',
            },
          },
        },
      ],
    });
    const conditions = byType(
      computeStatus({ ...input, deployment: deployment({ ready: 0, available: false }), pods: [stuck] }),
    );
    const words =
      'pod gpt2-abc: cannot pull image "registry.example/berth:nope" for container fetch-model (ImagePullBackOff): Back-off pulling image "registry.example/berth:nope"';
    expect(conditions.Degraded).toBe(`True ImagePullFailed: ${words}`);
    expect(conditions.ModelReady).toBe(`False ImagePullFailed: ${words}`);
    expect(conditions.Available).toBe(`False NoReplicasReady: 0/2 replicas ready: ${words}`);
  });

  it("a failing model pull says the last line of the init container's termination message", () => {
    const failing = pod("gpt2-def", {
      phase: "Pending",
      initContainerStatuses: [
        {
          name: "fetch-model",
          ready: false,
          restartCount: 3,
          state: {
            waiting: { reason: "CrashLoopBackOff", message: "back-off 40s restarting failed container" },
          },
          lastState: {
            terminated: {
              exitCode: 1,
              reason: "Error",
              message:
                "pulling hf://openai-community/gpt3\nberth: BERTH_MODEL_NOT_FOUND: hf://openai-community/gpt3: the repository does not exist\n",
            },
          },
        },
      ],
    });
    const conditions = byType(
      computeStatus({ ...input, deployment: deployment({ ready: 0 }), pods: [failing] }),
    );
    expect(conditions.ModelReady).toBe(
      "False ModelPullFailed: pod gpt2-def: the model pull (init container fetch-model) failed with exit code 1 (Error): berth: BERTH_MODEL_NOT_FOUND: hf://openai-community/gpt3: the repository does not exist (restarted 3 times)",
    );
    expect(conditions.Degraded).toMatch(/^True ModelPullFailed: /);
  });

  it("a crash loop gives the last exit; an unschedulable pod gives the scheduler's message", () => {
    const crashing = pod("gpt2-a", {
      phase: "Running",
      containerStatuses: [
        {
          name: "server",
          ready: false,
          restartCount: 5,
          state: { waiting: { reason: "CrashLoopBackOff" } },
          lastState: { terminated: { exitCode: 137, reason: "OOMKilled" } },
        },
      ],
    });
    const unschedulable = pod("gpt2-b", {
      phase: "Pending",
      conditions: [
        {
          type: "PodScheduled",
          status: "False",
          reason: "Unschedulable",
          message: "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
        },
      ],
    });
    const status = computeStatus({
      ...input,
      deployment: deployment({ ready: 1 }),
      pods: [serving("gpt2-c"), crashing, unschedulable],
    });
    const conditions = byType(status);
    expect(conditions.Degraded).toBe(
      "True CrashLoopBackOff: pod gpt2-a: container server is crash-looping; last exit with exit code 137 (OOMKilled) (restarted 5 times); pod gpt2-b cannot be scheduled: 0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
    );
    // One replica still serves: available and the model is ready, while degraded.
    expect(conditions.Available).toBe("True ReplicasReady: 1/2 replicas ready");
    expect(conditions.ModelReady).toMatch(/^True ModelLoaded/);
  });

  it("an invalid spec or a refused apply is Degraded with its words; a pulling model is not a problem", () => {
    const invalid = computeStatus({
      ...input,
      deployment: undefined,
      pods: [],
      failure: {
        reason: "InvalidSpec",
        message: "the spec is invalid: spec.replicas.max: must be ≥ spec.replicas.min (3)",
      },
    });
    expect(byType(invalid).Degraded).toBe(
      "True InvalidSpec: the spec is invalid: spec.replicas.max: must be ≥ spec.replicas.min (3)",
    );
    const pulling = pod("gpt2-p", {
      phase: "Pending",
      initContainerStatuses: [{ name: "fetch-model", ready: false, state: { running: {} } }],
    });
    const conditions = byType(
      computeStatus({ ...input, deployment: deployment({ ready: 0 }), pods: [pulling] }),
    );
    expect(conditions.Degraded).toBe("False AsExpected: no problems found");
    expect(conditions.ModelReady).toBe(
      "False ModelPulling: pod gpt2-p: pulling the model (init container fetch-model is running)",
    );
  });

  it("keeps lastTransitionTime while a condition's status stays, and moves it when the status changes", () => {
    const earlier = "2026-12-02T17:00:00Z";
    const previous = [
      { type: "Available" as const, status: "True" as const, lastTransitionTime: earlier },
      { type: "Degraded" as const, status: "True" as const, lastTransitionTime: earlier },
    ];
    const status = computeStatus({ ...input, deployment: deployment(), pods: [serving("a")], previous });
    const times = Object.fromEntries(status.conditions.map((c) => [c.type, c.lastTransitionTime]));
    expect(times.Available).toBe(earlier);
    expect(times.Degraded).toBe("2026-12-02T18:00:00Z");
  });

  it("scaled to zero is available (the gateway wakes it) and says so", () => {
    const conditions = byType(computeStatus({ ...input, deployment: deployment({ replicas: 0 }), pods: [] }));
    expect(conditions.Available).toBe(
      "True ScaledToZero: scaled to zero: the first request starts a replica",
    );
    expect(conditions.ModelReady).toBe("False ScaledToZero: no replicas: scaled to zero");
  });
});
