// What `berth install` applies (pure): the objects in order, RBAC rendered from the API call lists with no
// wildcards, Deployments wired to their ServiceAccounts, and the Helm chart holding the same objects.

import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { CRD_NAME } from "./crd.js";
import { operatorChart } from "./helm-operator.js";
import {
  GATEWAY_API_CALLS,
  GATEWAY_NAME,
  INSTALL_NAMESPACE,
  installObjects,
  OPERATOR_API_CALLS,
  OPERATOR_NAME,
  type PolicyRule,
  rulesFor,
} from "./install.js";
import type { KubeObject } from "./objects.js";

const find = (objects: KubeObject[], kind: string, name: string) =>
  objects.find((object) => object.kind === kind && object.metadata.name === name) as KubeObject;

describe("berth install objects", () => {
  it("applies the CRD and namespace first and the Deployments last", () => {
    const refs = installObjects().map((object) => `${object.kind}/${object.metadata.name}`);
    expect(refs.slice(0, 2)).toEqual([
      `CustomResourceDefinition/${CRD_NAME}`,
      `Namespace/${INSTALL_NAMESPACE}`,
    ]);
    expect(refs.slice(-2)).toEqual([`Deployment/${OPERATOR_NAME}`, `Deployment/${GATEWAY_NAME}`]);
    expect(refs).toHaveLength(13);
  });

  it("puts namespaced objects in the chosen namespace and labels everything as Berth's", () => {
    const objects = installObjects({ namespace: "ops" });
    for (const object of objects) {
      expect(object.metadata.labels?.["app.kubernetes.io/part-of"]).toBe("berth");
      const clusterScoped = ["CustomResourceDefinition", "Namespace", "ClusterRole", "ClusterRoleBinding"];
      expect(object.metadata.namespace).toBe(clusterScoped.includes(object.kind) ? undefined : "ops");
    }
    const binding = find(objects, "ClusterRoleBinding", OPERATOR_NAME) as KubeObject & {
      subjects: unknown[];
    };
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: OPERATOR_NAME, namespace: "ops" }]);
  });

  it("grants each call's verbs and nothing else (no wildcards)", () => {
    const objects = installObjects();
    for (const [name, calls] of [
      [OPERATOR_NAME, OPERATOR_API_CALLS],
      [GATEWAY_NAME, GATEWAY_API_CALLS],
    ] as const) {
      const clusterRules = (find(objects, "ClusterRole", name) as KubeObject & { rules: PolicyRule[] }).rules;
      const roleRules =
        (find(objects, "Role", name) as (KubeObject & { rules: PolicyRule[] }) | undefined)?.rules ?? [];
      const granted = (rules: PolicyRule[]) =>
        rules.flatMap((rule) =>
          rule.resources.flatMap((resource) =>
            rule.verbs.map((verb) => `${rule.apiGroups[0]}/${resource}:${verb}`),
          ),
        );
      const wanted = (scope: "cluster" | "install") =>
        calls
          .filter((call) => call.scope === scope)
          .flatMap((call) => call.verbs.map((verb) => `${call.group}/${call.resource}:${verb}`));
      expect(new Set(granted(clusterRules))).toEqual(new Set(wanted("cluster")));
      expect(new Set(granted(roleRules))).toEqual(new Set(wanted("install")));
      expect(JSON.stringify([clusterRules, roleRules])).not.toContain("*");
    }
  });

  it("merges resources with the same group and verbs into one rule", () => {
    expect(
      rulesFor(
        [
          { group: "", resource: "pods", verbs: ["watch", "list"], scope: "cluster", why: "" },
          { group: "", resource: "services", verbs: ["list", "watch"], scope: "cluster", why: "" },
          { group: "", resource: "pods", verbs: ["get"], scope: "install", why: "" },
        ],
        "cluster",
      ),
    ).toEqual([{ apiGroups: [""], resources: ["pods", "services"], verbs: ["list", "watch"] }]);
  });

  it("runs `berth operator` and `berth gateway` as their ServiceAccounts, the Service selecting the gateway", () => {
    const objects = installObjects({ image: "registry.example/berth:1.2.3", operatorReplicas: 3 });
    type Pod = { serviceAccountName: string; containers: Array<{ image: string; args: string[] }> };
    const pod = (name: string) =>
      (find(objects, "Deployment", name).spec as { template: { spec: Pod; metadata: { labels: object } } })
        .template;
    expect(pod(OPERATOR_NAME).spec.serviceAccountName).toBe(OPERATOR_NAME);
    expect(pod(OPERATOR_NAME).spec.containers[0]?.args).toEqual(["operator"]);
    expect(pod(OPERATOR_NAME).spec.containers[0]?.image).toBe("registry.example/berth:1.2.3");
    expect((find(objects, "Deployment", OPERATOR_NAME).spec as { replicas: number }).replicas).toBe(3);
    expect(pod(GATEWAY_NAME).spec.containers[0]?.args.slice(0, 1)).toEqual(["gateway"]);
    const selector = (find(objects, "Service", GATEWAY_NAME).spec as { selector: object }).selector;
    expect(pod(GATEWAY_NAME).metadata.labels).toMatchObject(selector);
    expect(pod(OPERATOR_NAME).metadata.labels).not.toMatchObject(selector);
  });
});

describe("berth install --helm", () => {
  it("holds the CRD in crds/ and every other object but the namespace as a template", () => {
    const files = operatorChart();
    expect(parseAllDocuments(files.get(`crds/${CRD_NAME}.yaml`) ?? "")[0]?.toJS()).toEqual(
      installObjects()[0],
    );
    const templates = [...files.keys()].filter((path) => path.startsWith("templates/"));
    expect(templates).toHaveLength(installObjects().length - 2);
    const deployment = files.get(`templates/${OPERATOR_NAME}-deployment.yaml`) ?? "";
    expect(deployment).toContain("namespace: {{ .Release.Namespace }}");
    expect(deployment).toContain("image: {{ .Values.image | quote }}");
    expect(deployment).toContain("replicas: {{ .Values.operator.replicas }}");
    expect([...files.values()].join("\n")).not.toMatch(/berth-helm-|__replicas/);
  });

  it("renders exactly the install objects with its default values (the four template expressions filled in)", () => {
    const files = operatorChart({ namespace: "ops" });
    const values = { image: '"ghcr.io/berth-dev/berth:0.1.0"', policy: '"IfNotPresent"' };
    const rendered = [...files]
      .filter(([path]) => path.startsWith("templates/"))
      .map(([, text]) =>
        parseAllDocuments(
          text
            .replaceAll("{{ .Release.Namespace }}", "ops")
            .replaceAll("{{ .Values.image | quote }}", values.image)
            .replaceAll("{{ .Values.imagePullPolicy | quote }}", values.policy)
            .replace(/\{\{ \.Values\.(operator|gateway)\.replicas \}\}/, "2"),
        )[0]?.toJS(),
      );
    const expected = installObjects({ namespace: "ops" }).filter(
      (object) => object.kind !== "Namespace" && object.kind !== "CustomResourceDefinition",
    );
    // The chart leaves out the version label (it would pin the image): compare without it.
    const unversioned = (objects: unknown[]) =>
      JSON.parse(JSON.stringify(objects).replaceAll(/,?"app.kubernetes.io\/version":"[^"]*"/g, ""));
    expect(unversioned(rendered)).toEqual(expect.arrayContaining(unversioned(expected)));
    expect(rendered).toHaveLength(expected.length);
  });
});
