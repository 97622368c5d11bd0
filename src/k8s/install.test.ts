// What `berth install` applies (pure): the objects in order, RBAC rendered from the API call lists with no
// wildcards, Deployments wired to their ServiceAccounts, and the Helm chart holding the same objects.

import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { CRD_NAME } from "./crd.js";
import { operatorChart } from "./helm-operator.js";
import {
  API_KEYS_MOUNT,
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
    expect(pod(OPERATOR_NAME).spec.containers[0]?.args).toEqual(["operator", "--health-port", "8081"]);
    expect(pod(OPERATOR_NAME).spec.containers[0]?.image).toBe("registry.example/berth:1.2.3");
    expect((find(objects, "Deployment", OPERATOR_NAME).spec as { replicas: number }).replicas).toBe(3);
    expect(pod(GATEWAY_NAME).spec.containers[0]?.args.slice(0, 1)).toEqual(["gateway"]);
    const selector = (find(objects, "Service", GATEWAY_NAME).spec as { selector: object }).selector;
    expect(pod(GATEWAY_NAME).metadata.labels).toMatchObject(selector);
    expect(pod(OPERATOR_NAME).metadata.labels).not.toMatchObject(selector);
  });
});

type Container = {
  args: string[];
  ports?: unknown[];
  readinessProbe?: unknown;
  livenessProbe?: unknown;
  envFrom?: unknown[];
  volumeMounts?: unknown[];
};
type PodSpec = { containers: Container[]; volumes?: unknown[]; securityContext: Record<string, unknown> };
const podSpec = (objects: KubeObject[], name: string) =>
  (find(objects, "Deployment", name).spec as { template: { spec: PodSpec } }).template.spec;

describe("berth install: probes and the gateway's API keys", () => {
  it("probes the operator on its named health port: /readyz for readiness, /healthz for liveness", () => {
    const [operator] = podSpec(installObjects(), OPERATOR_NAME).containers;
    expect(operator?.ports).toEqual([{ name: "health", containerPort: 8081, protocol: "TCP" }]);
    expect(operator?.readinessProbe).toMatchObject({ httpGet: { path: "/readyz", port: "health" } });
    expect(operator?.livenessProbe).toMatchObject({ httpGet: { path: "/healthz", port: "health" } });
    // The gateway keeps its own: /healthz on http for both.
    const [gateway] = podSpec(installObjects(), GATEWAY_NAME).containers;
    expect(gateway?.readinessProbe).toMatchObject({ httpGet: { path: "/healthz", port: "http" } });
  });

  it("mounts no Secret and sets no envFrom unless --api-keys-secret is given", () => {
    for (const name of [OPERATOR_NAME, GATEWAY_NAME]) {
      const spec = podSpec(installObjects(), name);
      expect(spec.volumes).toBeUndefined();
      expect(spec.containers[0]?.envFrom).toBeUndefined();
      expect(spec.containers[0]?.volumeMounts).toBeUndefined();
    }
  });

  it("with --api-keys-secret the gateway mounts it read-only and gets its keys as env; RBAC is unchanged", () => {
    const objects = installObjects({ apiKeysSecret: "berth-api-keys" });
    const spec = podSpec(objects, GATEWAY_NAME);
    expect(spec.volumes).toEqual([
      { name: "api-keys", secret: { secretName: "berth-api-keys", optional: false, defaultMode: 0o440 } },
    ]);
    expect(spec.containers[0]?.volumeMounts).toEqual([
      { name: "api-keys", mountPath: API_KEYS_MOUNT, readOnly: true },
    ]);
    expect(API_KEYS_MOUNT).toBe("/etc/berth/api-keys");
    expect(spec.containers[0]?.envFrom).toEqual([{ secretRef: { name: "berth-api-keys", optional: false } }]);
    // 0440 files are root's; the pod's fsGroup makes them the (non-root) container group's.
    expect(spec.securityContext.fsGroup).toBe(10001);
    expect(podSpec(objects, OPERATOR_NAME).volumes).toBeUndefined();
    // The kubelet mounts the Secret: no ServiceAccount may read Secrets.
    const rbac = objects.filter((object) => /Role$/.test(object.kind));
    expect(JSON.stringify(rbac)).not.toContain("secrets");
    expect(rbac).toEqual(installObjects().filter((object) => /Role$/.test(object.kind)));
  });
});

/** What `helm template` makes of a chart file, for the expressions the chart uses. */
function fillTemplate(text: string, values: { namespace: string; apiKeysSecret: string }): string {
  return text
    .replaceAll(
      /\s*\{\{- if \.Values\.gateway\.apiKeysSecret \}\}([\s\S]*?)\s*\{\{- end \}\}/g,
      (_block, body: string) => (values.apiKeysSecret ? body : ""),
    )
    .replaceAll("{{ .Values.gateway.apiKeysSecret | quote }}", JSON.stringify(values.apiKeysSecret))
    .replaceAll("{{ .Release.Namespace }}", values.namespace)
    .replaceAll("{{ .Values.image | quote }}", '"ghcr.io/berth-dev/berth:0.1.0"')
    .replaceAll("{{ .Values.imagePullPolicy | quote }}", '"IfNotPresent"')
    .replace(/\{\{ \.Values\.(operator|gateway)\.replicas \}\}/, "2");
}

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

  it.each([
    ["its default values", ""],
    ["gateway.apiKeysSecret set", "berth-api-keys"],
  ])("renders exactly the install objects with %s", (_title, apiKeysSecret) => {
    const files = operatorChart({ namespace: "ops", ...(apiKeysSecret ? { apiKeysSecret } : {}) });
    expect(files.get("values.yaml")).toContain(`apiKeysSecret: ${apiKeysSecret || '""'}`);
    const rendered = [...files]
      .filter(([path]) => path.startsWith("templates/"))
      .map(([, text]) =>
        parseAllDocuments(fillTemplate(text, { namespace: "ops", apiKeysSecret }))[0]?.toJS(),
      );
    const expected = installObjects({ namespace: "ops", ...(apiKeysSecret ? { apiKeysSecret } : {}) }).filter(
      (object) => object.kind !== "Namespace" && object.kind !== "CustomResourceDefinition",
    );
    // The chart leaves out the version label (it would pin the image): compare without it.
    const unversioned = (objects: unknown[]) =>
      JSON.parse(JSON.stringify(objects).replaceAll(/,?"app.kubernetes.io\/version":"[^"]*"/g, ""));
    expect(unversioned(rendered)).toEqual(expect.arrayContaining(unversioned(expected)));
    expect(rendered).toHaveLength(expected.length);
  });

  it("puts each part of the API keys Secret under one `if` on gateway.apiKeysSecret", () => {
    const gateway = operatorChart().get(`templates/${GATEWAY_NAME}-deployment.yaml`) ?? "";
    expect(gateway.match(/\{\{- if \.Values\.gateway\.apiKeysSecret \}\}/g)).toHaveLength(4);
    expect(gateway.match(/\{\{- end \}\}/g)).toHaveLength(4);
    expect(gateway).toContain("name: {{ .Values.gateway.apiKeysSecret | quote }}");
    expect(gateway).toContain("secretName: {{ .Values.gateway.apiKeysSecret | quote }}");
    expect(operatorChart().get(`templates/${OPERATOR_NAME}-deployment.yaml`)).not.toContain("{{- if");
  });
});
