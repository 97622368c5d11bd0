import { describe, expect, it } from "vitest";
import { errorFromResponse, parseResourcePath, verbOf } from "./errors.js";
import type { KubeObject } from "./objects.js";
import { diffObjects, type ExistingObject, planApply } from "./plan.js";
import { rolloutState } from "./rollout.js";

const berthLabels = (instance: string) => ({
  "app.kubernetes.io/managed-by": "berth",
  "app.kubernetes.io/instance": instance,
});

function rendered(kind: string, name: string, apiVersion = "v1"): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace: "ns", labels: berthLabels(name) } };
}

function live(kind: string, name: string, labels: Record<string, string>, apiVersion = "v1"): ExistingObject {
  return {
    apiVersion,
    kind,
    name,
    namespace: "ns",
    labels,
    resourceVersion: "1",
    uid: `uid-${kind}`,
    managers: ["x"],
  };
}

describe("planApply", () => {
  it("applies new and owned objects, and refuses names Berth did not create", () => {
    const plan = planApply(
      [rendered("ConfigMap", "gpt2"), rendered("Service", "gpt2"), rendered("ServiceAccount", "gpt2")],
      [
        live("ConfigMap", "gpt2", berthLabels("gpt2")),
        live("Service", "gpt2", { app: "gpt2" }),
        // Berth's, but for another model: still not this model's to take.
        live("ServiceAccount", "gpt2", berthLabels("other")),
      ],
    );
    expect(plan.apply.map((item) => [item.object.kind, item.existing?.resourceVersion])).toEqual([
      ["ConfigMap", "1"],
    ]);
    expect(plan.notOwned.map((item) => item.object.kind)).toEqual(["Service", "ServiceAccount"]);
  });

  it("prunes only this model's Berth objects that are no longer rendered", () => {
    const plan = planApply(
      [rendered("Service", "gpt2")],
      [
        live("Service", "gpt2", berthLabels("gpt2")),
        live("Ingress", "gpt2", berthLabels("gpt2"), "networking.k8s.io/v1"),
        live("Ingress", "other", berthLabels("other"), "networking.k8s.io/v1"),
        live("Ingress", "mine", { "app.kubernetes.io/instance": "gpt2" }, "networking.k8s.io/v1"),
      ],
    );
    expect(plan.prune.map((item) => `${item.kind}/${item.name}`)).toEqual(["Ingress/gpt2"]);
  });
});

describe("diffObjects", () => {
  it("names changed leaves and ignores what the server maintains", () => {
    const before = {
      metadata: { name: "a", resourceVersion: "1", generation: 1, managedFields: [{}] },
      spec: { replicas: 2, template: { spec: { containers: [{ image: "a:1" }, { image: "b" }] } } },
      status: { replicas: 2 },
    };
    const after = {
      metadata: { name: "a", resourceVersion: "2", generation: 2, managedFields: [{}, {}] },
      spec: { replicas: 3, template: { spec: { containers: [{ image: "a:2" }, { image: "b" }] } } },
      status: { replicas: 3 },
    };
    expect(diffObjects(before, after)).toEqual(["spec.replicas", "spec.template.spec.containers[0].image"]);
    expect(diffObjects(before, structuredClone(before))).toEqual([]);
  });
});

describe("rolloutState", () => {
  const deployment = (generation: number, status: Record<string, unknown>, replicas = 2) => ({
    metadata: { name: "gpt2", generation },
    spec: { replicas },
    status,
  });

  it.each([
    [
      "the controller has not seen the new generation",
      deployment(2, { observedGeneration: 1, updatedReplicas: 2, availableReplicas: 2, replicas: 2 }),
      "progressing",
    ],
    [
      "replicas still updating",
      deployment(2, { observedGeneration: 2, updatedReplicas: 1, availableReplicas: 2, replicas: 3 }),
      "progressing",
    ],
    [
      "old replicas still terminating",
      deployment(2, { observedGeneration: 2, updatedReplicas: 2, availableReplicas: 2, replicas: 3 }),
      "progressing",
    ],
    [
      "updated but not available",
      deployment(2, { observedGeneration: 2, updatedReplicas: 2, availableReplicas: 1, replicas: 2 }),
      "progressing",
    ],
    [
      "done",
      deployment(2, { observedGeneration: 2, updatedReplicas: 2, availableReplicas: 2, replicas: 2 }),
      "complete",
    ],
    [
      "progress deadline exceeded",
      deployment(2, {
        observedGeneration: 2,
        updatedReplicas: 1,
        conditions: [
          { type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: "too slow" },
        ],
      }),
      "failed",
    ],
  ])("%s", (_what, input, phase) => {
    expect(rolloutState(input).phase).toBe(phase);
  });

  it("waits for the generation the apply produced even if the object read is older", () => {
    const done = deployment(1, {
      observedGeneration: 1,
      updatedReplicas: 2,
      availableReplicas: 2,
      replicas: 2,
    });
    expect(rolloutState(done).phase).toBe("complete");
    expect(rolloutState(done, 2).phase).toBe("progressing");
  });

  it("says what it waits for", () => {
    const state = rolloutState(
      deployment(3, {
        observedGeneration: 3,
        updatedReplicas: 1,
        availableReplicas: 1,
        replicas: 2,
        conditions: [{ type: "Available", status: "False", reason: "MinimumReplicasUnavailable" }],
      }),
    );
    expect(state.message).toBe(
      "generation 3 observed 3; 1/2 updated, 1/2 available, 1 old; Available=False (MinimumReplicasUnavailable)",
    );
  });
});

describe("errorFromResponse", () => {
  it("names the verb and resource RBAC denied", () => {
    const error = errorFromResponse({
      method: "PATCH",
      path: "/apis/apps/v1/namespaces/team/deployments/gpt2",
      status: 403,
      body: {
        kind: "Status",
        message:
          'deployments.apps "gpt2" is forbidden: User "system:serviceaccount:team:narrow" cannot patch resource "deployments" in API group "apps" in the namespace "team"',
        reason: "Forbidden",
        details: { name: "gpt2", group: "apps", kind: "deployments" },
        code: 403,
      },
    });
    expect(error.code).toBe("BERTH_K8S_FORBIDDEN");
    expect(error.message).toContain(
      'system:serviceaccount:team:narrow may not patch deployments.apps in namespace "team"',
    );
    expect(error.message).toContain('grant the verb "patch" on resource "deployments" in API group "apps"');
  });

  it("carries the field paths of a rejected object", () => {
    const error = errorFromResponse(
      {
        method: "PATCH",
        path: "/api/v1/namespaces/team/services/gpt2",
        status: 422,
        body: {
          kind: "Status",
          message: 'Service "gpt2" is invalid: spec.ports[0].port: Invalid value: 70000',
          reason: "Invalid",
          details: {
            causes: [
              {
                reason: "FieldValueInvalid",
                message: "Invalid value: 70000: must be between 1 and 65535",
                field: "spec.ports[0].port",
              },
            ],
          },
          code: 422,
        },
      },
      "Service/gpt2",
    );
    expect(error.code).toBe("BERTH_K8S_REJECTED");
    expect(error.causes[0]?.field).toBe("spec.ports[0].port");
    expect(error.message).toContain("Service/gpt2: spec.ports[0].port: Invalid value: 70000");
  });

  it("reads unknown fields out of a strict-validation message", () => {
    const error = errorFromResponse({
      method: "PATCH",
      path: "/api/v1/namespaces/team/configmaps/gpt2",
      status: 400,
      body: {
        kind: "Status",
        message: '.spec.bogus: field not declared in schema; unknown field "spec.bogus"',
        code: 400,
      },
    });
    expect(error.code).toBe("BERTH_K8S_REJECTED");
    expect(error.causes).toEqual([
      { field: "spec.bogus", message: "unknown field", reason: "FieldValueInvalid" },
    ]);
  });

  it("tells a missing namespace from other 404s, and reports field-manager conflicts", () => {
    const missing = errorFromResponse({
      method: "PATCH",
      path: "/api/v1/namespaces/nope/configmaps/gpt2",
      status: 404,
      body: {
        kind: "Status",
        message: 'namespaces "nope" not found',
        details: { name: "nope", kind: "namespaces" },
        code: 404,
      },
    });
    expect(missing.code).toBe("BERTH_K8S_NAMESPACE_NOT_FOUND");
    const conflict = errorFromResponse(
      {
        method: "PATCH",
        path: "/apis/apps/v1/namespaces/ns/deployments/gpt2",
        status: 409,
        body: {
          kind: "Status",
          reason: "Conflict",
          details: {
            causes: [
              {
                reason: "FieldManagerConflict",
                message: 'conflict with "kubectl-edit" using apps/v1',
                field: ".spec.replicas",
              },
            ],
          },
          code: 409,
        },
      },
      "Deployment/gpt2",
    );
    expect(conflict.code).toBe("BERTH_K8S_CONFLICT");
    expect(conflict.message).toContain('.spec.replicas: conflict with "kubectl-edit"');
  });

  it("derives the RBAC verb and resource from the request", () => {
    expect(verbOf("GET", "/apis/apps/v1/namespaces/ns/deployments")).toBe("list");
    expect(verbOf("GET", "/apis/apps/v1/namespaces/ns/deployments/x")).toBe("get");
    expect(verbOf("GET", "/apis/apps/v1/namespaces/ns/deployments", { watch: "true" })).toBe("watch");
    expect(parseResourcePath("/apis/apps/v1/namespaces/ns/deployments/x/scale")).toEqual({
      group: "apps",
      plural: "deployments",
      namespace: "ns",
      name: "x",
      subresource: "scale",
    });
    expect(parseResourcePath("/api/v1/namespaces/ns/configmaps")).toMatchObject({
      group: "",
      plural: "configmaps",
    });
  });
});
