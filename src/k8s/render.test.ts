import { readFile } from "node:fs/promises";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { Ingress } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { PersistentVolumeClaim } from "kubernetes-models/v1/PersistentVolumeClaim";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { ALERTS } from "../monitoring/alerts.js";
import { loadSpecFile, parseSpecText } from "../spec/load.js";
import type { ModelDeployment } from "../spec/schema.js";
import { type KubeObject, RESOURCE_TYPES } from "./objects.js";
import { CONFIG_FILE, imageVersion, modelFileName, renderDeployment } from "./render.js";

/** The maintained OpenAPI-derived schema of each kind Berth renders (kubernetes-models). */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  ServiceAccount,
  ConfigMap,
  Service,
  Deployment,
  HorizontalPodAutoscaler,
  PodDisruptionBudget,
  NetworkPolicy,
  Ingress,
  ServiceMonitor,
  PrometheusRule,
  PersistentVolumeClaim,
};

function validateAgainstSchema(object: KubeObject): void {
  const Model = MODELS[object.kind];
  if (!Model) throw new Error(`no schema for ${object.kind}`);
  new Model(structuredClone(object) as never).validate();
}

function specOf(text: string): ModelDeployment {
  const [deployment] = parseSpecText(text);
  if (!deployment) throw new Error("no deployment");
  return deployment;
}

const FULL = specOf(`apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: llama
  namespace: models
  labels: { team: search }
  annotations: { owner: search@example.com }
spec:
  model: { source: hf://org/repo/llama-q8_0.gguf, contextSize: 4096, servedName: llama-3 }
  engine: { parallel: 16, threads: 6 }
  replicas: { min: 2, max: 6 }
  autoscaling: { targetInFlight: 12, scaleDownDelay: 2m }
  resources: { cpu: "8", memory: 24Gi, gpu: 1 }
  service: { type: ClusterIP, port: 8080 }
  ingress: { host: llama.example.com, className: nginx, path: /v1, tlsSecretName: llama-tls }
  kubernetes:
    image: registry.example.com/berth:1.2.3
    modelVolumeClaim: llama-weights
    serviceMonitor: true
`);

const MINIMAL = specOf(`apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: tiny }
spec:
  model: { source: tiny://tiny }
`);

function byKind(objects: KubeObject[], kind: string): KubeObject {
  const found = objects.find((object) => object.kind === kind);
  if (!found) throw new Error(`no ${kind} rendered`);
  return found;
}

// biome-ignore lint/suspicious/noExplicitAny: tests walk rendered JSON freely
type Json = any;

describe("renderDeployment", () => {
  it("renders every kind, and each validates against the Kubernetes OpenAPI schema", () => {
    const objects = renderDeployment(FULL);
    // FULL mounts an existing claim; the model cache claim (the other way) has its own test below.
    expect(objects.map((object) => object.kind)).toEqual(
      RESOURCE_TYPES.map((type) => type.kind).filter((kind) => kind !== "PersistentVolumeClaim"),
    );
    for (const object of objects) {
      expect(() => validateAgainstSchema(object), object.kind).not.toThrow();
      expect(object.metadata.name).toBe("llama");
      expect(object.metadata.namespace).toBe("models");
      expect(object.metadata.labels).toMatchObject({
        team: "search",
        "app.kubernetes.io/name": "llama",
        "app.kubernetes.io/instance": "llama",
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "berth",
        "app.kubernetes.io/managed-by": "berth",
        "app.kubernetes.io/version": "1.2.3",
      });
      expect(object.metadata.annotations).toMatchObject({ owner: "search@example.com" });
    }
  });

  it("renders Berth's alerts for this model only next to the ServiceMonitor, which labels job and replica", () => {
    const objects = renderDeployment(FULL);
    const rule = byKind(objects, "PrometheusRule") as Json;
    const served = FULL.spec.model.servedName ?? FULL.metadata.name;
    expect(rule.spec.groups[0].rules.map((entry: Json) => entry.alert)).toEqual(
      ALERTS.map((alert) => alert.name),
    );
    for (const entry of rule.spec.groups[0].rules) {
      expect(entry.expr).toContain(`model="${served}"`);
      expect(entry.expr).not.toMatch(/berth_\w+\[/); // every selector is scoped
    }
    const monitor = byKind(objects, "ServiceMonitor") as Json;
    expect(monitor.spec.endpoints[0].relabelings).toEqual([
      { sourceLabels: ["__meta_kubernetes_pod_name"], targetLabel: "replica" },
      { targetLabel: "job", replacement: "berth-replicas" },
    ]);
  });

  it("the schema check rejects what the API server would (it is not vacuous)", () => {
    const deployment = structuredClone(byKind(renderDeployment(MINIMAL), "Deployment")) as Json;
    deployment.spec.template.spec.containers[0].ports[0].containerPort = "9000";
    expect(() => validateAgainstSchema(deployment)).toThrow(/containerPort must be integer/);
  });

  it("leaves out the optional objects a minimal spec does not ask for", () => {
    const kinds = renderDeployment(MINIMAL).map((object) => object.kind);
    expect(kinds).toEqual([
      "ServiceAccount",
      "ConfigMap",
      "Service",
      "Deployment",
      "PodDisruptionBudget",
      "NetworkPolicy",
    ]);
    for (const object of renderDeployment(MINIMAL)) {
      expect(object.metadata.namespace).toBeUndefined();
      validateAgainstSchema(object);
    }
  });

  it("hardens the pod: non-root, read-only root, no capabilities, RuntimeDefault seccomp, no token", () => {
    const pod = (byKind(renderDeployment(MINIMAL), "Deployment") as Json).spec.template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    for (const container of [...pod.containers, ...pod.initContainers]) {
      expect(container.securityContext).toEqual({
        runAsNonRoot: true,
        runAsUser: 10001,
        runAsGroup: 10001,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      });
      // A read-only root filesystem needs a writable /tmp.
      expect(container.volumeMounts).toContainEqual({ name: "tmp", mountPath: "/tmp" });
    }
    expect(pod.volumes).toContainEqual({ name: "tmp", emptyDir: { sizeLimit: "1Gi" } });
  });

  it("runs `berth serve` with probes, requests = limits, a drain window and a rolling update without loss", () => {
    const deployment = byKind(renderDeployment(MINIMAL), "Deployment") as Json;
    const container = deployment.spec.template.spec.containers[0];
    expect(container.command).toEqual(["berth"]);
    expect(container.args).toEqual([
      "serve",
      "--model",
      "/models/model.gguf",
      "--host",
      "0.0.0.0",
      "--port",
      "9000",
      "--parallel",
      "8",
      "--ctx",
      "1024",
      "--threads",
      "2",
      "--model-id",
      "tiny",
      "--grace-period",
      "120s",
    ]);
    expect(container.startupProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(container.resources).toEqual({
      requests: { cpu: "2", memory: "4Gi" },
      limits: { cpu: "2", memory: "4Gi" },
    });
    expect(container.lifecycle.preStop).toEqual({ sleep: { seconds: 5 } });
    // Long enough for the preStop pause plus draining admitted generations.
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(60);
    expect(deployment.spec.strategy).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    expect(deployment.spec.template.spec.topologySpreadConstraints[0]).toMatchObject({
      topologyKey: "kubernetes.io/hostname",
      maxSkew: 1,
    });
    expect(deployment.spec.template.metadata.annotations).toEqual({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "9000",
      "prometheus.io/path": "/metrics",
    });
    // The startup probe's budget fits inside the progress deadline.
    const startupBudget = container.startupProbe.periodSeconds * container.startupProbe.failureThreshold;
    expect(deployment.spec.progressDeadlineSeconds).toBeGreaterThan(startupBudget);
  });

  it("fetches the model with an init container into an emptyDir when no PVC holds it", () => {
    const pod = (byKind(renderDeployment(MINIMAL), "Deployment") as Json).spec.template.spec;
    expect(pod.initContainers).toHaveLength(1);
    expect(pod.initContainers[0].args).toEqual([
      "model",
      "pull",
      "tiny://tiny",
      "--output",
      "/models/model.gguf",
    ]);
    expect(pod.initContainers[0].volumeMounts).toContainEqual({ name: "model", mountPath: "/models" });
    // Why a pull failed reaches the pod status (and the operator's conditions) without kubectl logs.
    expect(pod.initContainers[0].terminationMessagePolicy).toBe("FallbackToLogsOnError");
    expect(pod.volumes).toContainEqual({ name: "model", emptyDir: {} });
    expect(pod.containers[0].volumeMounts).toContainEqual({
      name: "model",
      mountPath: "/models",
      readOnly: true,
    });
  });

  it("spec.model.cache: the claim is rendered (with a size), shared RW by the pull, read-only for the server", () => {
    const spec = specOf(`apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: gpt2 }
spec:
  model:
    source: hf://org/repo:Q8_0
    cache: { claimName: model-cache, size: 20Gi, storageClassName: nfs }
    credentialsSecret: hf-token
`);
    const objects = renderDeployment(spec);
    for (const object of objects) validateAgainstSchema(object);
    const kinds = objects.map((object) => object.kind);
    expect(kinds.indexOf("PersistentVolumeClaim")).toBeLessThan(kinds.indexOf("Deployment"));
    expect(byKind(objects, "PersistentVolumeClaim")).toMatchObject({
      metadata: { name: "model-cache" },
      spec: {
        accessModes: ["ReadWriteMany"],
        storageClassName: "nfs",
        resources: { requests: { storage: "20Gi" } },
      },
    });
    const pod = (byKind(objects, "Deployment") as Json).spec.template.spec;
    expect(pod.volumes).toContainEqual({
      name: "model",
      persistentVolumeClaim: { claimName: "model-cache" },
    });
    const [init] = pod.initContainers;
    const modelPath = init.args[4];
    expect(init.args.slice(0, 4)).toEqual(["model", "pull", "hf://org/repo:Q8_0", "--output"]);
    // A folder per source in the shared claim; the server is given exactly that file.
    expect(modelPath).toMatch(/^\/models\/sources\/[0-9a-f]{16}\/model\.gguf$/);
    expect(pod.containers[0].args[pod.containers[0].args.indexOf("--model") + 1]).toBe(modelPath);
    expect(pod.containers[0].volumeMounts).toContainEqual({
      name: "model",
      mountPath: "/models",
      readOnly: true,
    });
    // Credentials: only the pull gets the Secret, by reference; the server sees none of it.
    expect(init.envFrom).toEqual([{ secretRef: { name: "hf-token" } }]);
    expect(init.env).toContainEqual({ name: "HF_HOME", value: "/models/.huggingface" });
    expect(pod.containers[0].envFrom).toBeUndefined();
    // Without a size the claim must exist: nothing is rendered for it.
    const existing = specOf(
      `apiVersion: berth.dev/v1alpha1\nkind: ModelDeployment\nmetadata: { name: gpt2 }\nspec:\n  model: { source: tiny://tiny, cache: { claimName: shared } }\n`,
    );
    expect(renderDeployment(existing).map((object) => object.kind)).not.toContain("PersistentVolumeClaim");
  });

  it("refuses spec.model.cache together with spec.kubernetes.modelVolumeClaim", () => {
    expect(() =>
      specOf(
        `apiVersion: berth.dev/v1alpha1\nkind: ModelDeployment\nmetadata: { name: gpt2 }\nspec:\n  model: { source: tiny://tiny, cache: { claimName: a } }\n  kubernetes: { modelVolumeClaim: b }\n`,
      ),
    ).toThrow(/spec\.model\.cache: give either/);
  });

  it("mounts the PVC read-only and runs no init container when spec.kubernetes.modelVolumeClaim is set", () => {
    const pod = (byKind(renderDeployment(FULL), "Deployment") as Json).spec.template.spec;
    expect(pod.initContainers).toBeUndefined();
    expect(pod.volumes).toContainEqual({
      name: "model",
      persistentVolumeClaim: { claimName: "llama-weights", readOnly: true },
    });
    expect(pod.containers[0].args).toContain("/models/llama-q8_0.gguf");
    expect(pod.containers[0].args.join(" ")).toContain("--threads 6");
    expect(pod.containers[0].args.join(" ")).toContain("--model-id llama-3");
  });

  it("gives GPU models the nvidia.com/gpu limit, the GPU node selector and the taint toleration", () => {
    const pod = (byKind(renderDeployment(FULL), "Deployment") as Json).spec.template.spec;
    expect(pod.containers[0].resources.limits["nvidia.com/gpu"]).toBe("1");
    expect(pod.containers[0].resources.requests["nvidia.com/gpu"]).toBeUndefined();
    expect(pod.nodeSelector).toEqual({ "nvidia.com/gpu.present": "true" });
    expect(pod.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    const cpuPod = (byKind(renderDeployment(MINIMAL), "Deployment") as Json).spec.template.spec;
    expect(cpuPod.nodeSelector).toBeUndefined();
    expect(cpuPod.tolerations).toBeUndefined();
  });

  it("autoscales on requests in flight with an HPA, and then leaves replicas out of the Deployment", () => {
    const objects = renderDeployment(FULL);
    const hpa = byKind(objects, "HorizontalPodAutoscaler") as Json;
    expect(hpa.spec.minReplicas).toBe(2);
    expect(hpa.spec.maxReplicas).toBe(6);
    expect(hpa.spec.metrics).toEqual([
      {
        type: "Pods",
        pods: {
          metric: { name: "berth_requests_in_flight" },
          target: { type: "AverageValue", averageValue: "12" },
        },
      },
    ]);
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBe(120);
    expect((byKind(objects, "Deployment") as Json).spec.replicas).toBeUndefined();
  });

  it("scales on CPU utilisation when the spec says so (clusters without a metrics adapter)", () => {
    const spec = structuredClone(FULL);
    spec.spec.kubernetes.autoscalingMetric = "cpu";
    const hpa = byKind(renderDeployment(spec), "HorizontalPodAutoscaler") as Json;
    expect(hpa.spec.metrics[0]).toEqual({
      type: "Resource",
      resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } },
    });
  });

  it("tunes the Ingress for streaming and routes to the Service port", () => {
    const ingress = byKind(renderDeployment(FULL), "Ingress") as Json;
    expect(ingress.metadata.annotations).toMatchObject({
      "nginx.ingress.kubernetes.io/proxy-buffering": "off",
      "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
      "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
      "nginx.ingress.kubernetes.io/proxy-body-size": "16m",
    });
    expect(ingress.spec.tls).toEqual([{ hosts: ["llama.example.com"], secretName: "llama-tls" }]);
    expect(ingress.spec.rules[0].http.paths[0]).toEqual({
      path: "/v1",
      pathType: "Prefix",
      backend: { service: { name: "llama", port: { number: 8080 } } },
    });
  });

  it("opens only the serving port in the NetworkPolicy, and can leave it out", () => {
    const policy = byKind(renderDeployment(MINIMAL), "NetworkPolicy") as Json;
    expect(policy.spec.ingress).toEqual([{ ports: [{ protocol: "TCP", port: 9000 }] }]);
    const spec = structuredClone(MINIMAL);
    spec.spec.kubernetes.networkPolicy = false;
    expect(renderDeployment(spec).map((object) => object.kind)).not.toContain("NetworkPolicy");
  });

  it("stores the spec in the ConfigMap in a form Berth loads back to the same deployment", () => {
    const configMap = byKind(renderDeployment(FULL), "ConfigMap") as Json;
    const [reloaded] = parseSpecText(configMap.data[CONFIG_FILE]);
    expect(reloaded).toEqual(FULL);
  });

  it("is deterministic: the same spec renders the same bytes, whatever order it was written in", () => {
    const reordered = specOf(`kind: ModelDeployment
apiVersion: berth.dev/v1alpha1
spec:
  kubernetes: { serviceMonitor: true, modelVolumeClaim: llama-weights, image: registry.example.com/berth:1.2.3 }
  ingress: { tlsSecretName: llama-tls, path: /v1, className: nginx, host: llama.example.com }
  service: { port: 8080, type: ClusterIP }
  resources: { gpu: 1, memory: 24Gi, cpu: "8" }
  autoscaling: { scaleDownDelay: 2m, targetInFlight: 12 }
  replicas: { max: 6, min: 2 }
  engine: { threads: 6, parallel: 16 }
  model: { servedName: llama-3, contextSize: 4096, source: hf://org/repo/llama-q8_0.gguf }
metadata:
  annotations: { owner: search@example.com }
  labels: { team: search }
  namespace: models
  name: llama
`);
    expect(JSON.stringify(renderDeployment(reordered))).toBe(JSON.stringify(renderDeployment(FULL)));
  });

  it("the user's labels cannot replace the labels Berth selects and prunes by", () => {
    const spec = structuredClone(MINIMAL);
    spec.metadata.labels = { "app.kubernetes.io/managed-by": "someone", "app.kubernetes.io/instance": "x" };
    for (const object of renderDeployment(spec)) {
      expect(object.metadata.labels?.["app.kubernetes.io/managed-by"]).toBe("berth");
      expect(object.metadata.labels?.["app.kubernetes.io/instance"]).toBe("tiny");
    }
  });

  it("takes the image and namespace from options over the spec", () => {
    const objects = renderDeployment(FULL, { image: "localhost/berth@sha256:abc", namespace: "other" });
    const deployment = byKind(objects, "Deployment") as Json;
    expect(deployment.spec.template.spec.containers[0].image).toBe("localhost/berth@sha256:abc");
    expect(objects.every((object) => object.metadata.namespace === "other")).toBe(true);
    // A digest is not a version label value.
    expect(deployment.metadata.labels["app.kubernetes.io/version"]).toBeUndefined();
  });
});

describe("helpers", () => {
  it.each([
    ["ghcr.io/berth-dev/berth:0.1.0", "0.1.0"],
    ["localhost:5000/berth:dev", "dev"],
    ["localhost:5000/berth", undefined],
    ["berth@sha256:abcd", undefined],
    ["berth:1.0@sha256:abcd", "1.0"],
  ])("imageVersion(%s) = %s", (image, version) => {
    expect(imageVersion(image)).toBe(version);
  });

  it.each([
    ["hf://openai-community/gpt2", "model.gguf"],
    ["hf://org/repo/model-q8_0.gguf", "model-q8_0.gguf"],
    ["file:///data/gpt2.gguf", "gpt2.gguf"],
    ["https://example.com/x/m.GGUF?download=1", "m.GGUF"],
    ["tiny://tiny?dtype=q8_0", "model.gguf"],
  ])("modelFileName(%s) = %s", (source, file) => {
    expect(modelFileName(source)).toBe(file);
  });
});

/**
 * The seed's hand-written manifests against what Berth renders from examples/seed-gpt2/berth.yaml.
 * Every leaf the seed sets must come out the same, at the same path, except where Berth's naming
 * differs on purpose (listed here with the reason).
 */
const SEED_MAPPING: Record<string, { path: string; value?: unknown; why: string }> = {
  "Deployment spec.selector.matchLabels.app": {
    path: "spec.selector.matchLabels.app\\.kubernetes\\.io/name",
    why: "the recommended app.kubernetes.io/name label replaces the ad-hoc `app`",
  },
  "Deployment spec.template.metadata.labels.app": {
    path: "spec.template.metadata.labels.app\\.kubernetes\\.io/name",
    why: "same label",
  },
  "Deployment spec.template.spec.containers.0.name": {
    path: "spec.template.spec.containers.0.name",
    value: "server",
    why: "a fixed container name, so `berth logs` and probes find it whatever the model is called",
  },
  "Service metadata.name": {
    path: "metadata.name",
    value: "gpt2",
    why: "every object of a model deployment is named after the model; kinds keep them apart",
  },
  "Service spec.selector.app": { path: "spec.selector.app\\.kubernetes\\.io/name", why: "same label" },
  "Ingress metadata.name": { path: "metadata.name", value: "gpt2", why: "named after the model" },
  "Ingress spec.rules.0.http.paths.0.backend.service.name": {
    path: "spec.rules.0.http.paths.0.backend.service.name",
    value: "gpt2",
    why: "the Service is named after the model",
  },
};

function leaves(value: unknown, prefix = ""): Array<[string, unknown]> {
  if (value === null || typeof value !== "object") return [[prefix, value]];
  return Object.entries(value).flatMap(([key, child]) =>
    leaves(child, prefix === "" ? escapeKey(key) : `${prefix}.${escapeKey(key)}`),
  );
}
const escapeKey = (key: string) => key.replaceAll(".", "\\.");

function valueAt(object: unknown, path: string): unknown {
  const keys = path.split(/(?<!\\)\./).map((key) => key.replaceAll("\\.", "."));
  let current = object as Json;
  for (const key of keys) current = current?.[key];
  return current;
}

describe("the seed example (examples/seed-gpt2)", () => {
  it("renders every field the seed's deployment.yaml, service.yaml and ingress.yaml set, plus hardening", async () => {
    const [spec] = (await loadSpecFile("examples/seed-gpt2/berth.yaml")).deployments;
    if (!spec) throw new Error("no spec");
    // The seed ran its own image; Berth runs whatever image `--image` names.
    const rendered = renderDeployment(spec, { image: "gpt2:latest" });
    let compared = 0;
    for (const file of ["deployment.yaml", "service.yaml", "ingress.yaml"]) {
      const seed = parseYaml(await readFile(`test/fixtures/seed/${file}`, "utf8")) as KubeObject;
      const object = byKind(rendered, seed.kind);
      expect(object.apiVersion).toBe(seed.apiVersion);
      for (const [path, seedValue] of leaves(seed)) {
        const mapped = SEED_MAPPING[`${seed.kind} ${path}`];
        const actual = valueAt(object, mapped?.path ?? path);
        expect(actual, `${seed.kind} ${path}`).toEqual(
          mapped && "value" in mapped ? mapped.value : seedValue,
        );
        compared++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(20);

    const deployment = byKind(rendered, "Deployment") as Json;
    const container = deployment.spec.template.spec.containers[0];
    expect(deployment.spec.replicas).toBe(2);
    expect(container.readinessProbe).toBeDefined();
    expect(container.livenessProbe).toBeDefined();
    expect(container.resources.limits).toBeDefined();
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(rendered.map((object) => object.kind)).toEqual(
      expect.arrayContaining(["PodDisruptionBudget", "NetworkPolicy", "ServiceAccount"]),
    );
    for (const object of rendered) validateAgainstSchema(object);
  });

  it("the fixtures are the seed's three objects and nothing else", async () => {
    for (const file of ["deployment.yaml", "service.yaml", "ingress.yaml"]) {
      const documents = parseAllDocuments(await readFile(`test/fixtures/seed/${file}`, "utf8"));
      expect(Array.isArray(documents) ? documents.length : 0).toBe(1);
    }
  });
});

describe("spec.kubernetes.autoscalingMetric", () => {
  it("defaults to inFlight and accepts only inFlight or cpu", () => {
    expect(MINIMAL.spec.kubernetes.autoscalingMetric).toBe("inFlight");
    expect(() =>
      parseSpecText(`apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: tiny }
spec:
  model: { source: tiny://tiny }
  kubernetes: { autoscalingMetric: memory }
`),
    ).toThrow(/spec\.kubernetes\.autoscalingMetric/);
  });
});

describe("rendered objects", () => {
  it("share no references, so YAML output has no anchors and callers may edit one object alone", () => {
    const objects = renderDeployment(FULL);
    const [first, second] = objects;
    if (!first?.metadata.labels || !second) throw new Error("expected objects");
    first.metadata.labels.extra = "x";
    expect(second.metadata.labels?.extra).toBeUndefined();
  });
});
