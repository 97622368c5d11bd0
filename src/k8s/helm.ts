// Exports rendered objects as a Helm chart whose default values render exactly those objects: the
// fields people tune per environment (image, replicas, resources, service, ingress) become values.
// Pure: returns the chart's files as a map of relative path → text.
import { stringify } from "yaml";
import type { ModelDeployment } from "../spec/schema.js";
import type { KubeObject } from "./objects.js";
import { IN_FLIGHT_METRIC, imageVersion } from "./render.js";

export interface ChartModel {
  deployment: ModelDeployment;
  /** What renderDeployment produced for it (without a namespace: Helm's --namespace decides). */
  objects: KubeObject[];
}

/** A field to template: where it sits in the object, its values key, and whether to quote it. */
interface Hole {
  path: Array<string | number>;
  value: string;
  quote: boolean;
}

export function helmChart(chartName: string, models: readonly ChartModel[]): Map<string, string> {
  const files = new Map<string, string>();
  const firstImage = models[0]?.objects
    .flatMap((object) => (object.kind === "Deployment" ? [containerImage(object)] : []))
    .find(Boolean);
  files.set(
    "Chart.yaml",
    stringify({
      apiVersion: "v2",
      name: chartName,
      description: `Model deployments rendered by Berth: ${models.map((model) => model.deployment.metadata.name).join(", ")}`,
      type: "application",
      version: "0.1.0",
      appVersion: (firstImage && imageVersion(firstImage)) ?? "latest",
    }),
  );
  const values: Record<string, unknown> = {};
  for (const model of models) {
    const name = model.deployment.metadata.name;
    values[name] = modelValues(model);
    for (const object of model.objects) {
      files.set(`templates/${name}-${object.kind.toLowerCase()}.yaml`, template(name, object));
    }
  }
  files.set(
    "values.yaml",
    `# Defaults render exactly what \`berth render\` printed. One key per model.\n${stringify({ models: values })}`,
  );
  files.set("README.md", readme(chartName, models));
  return files;
}

function containerImage(deployment: KubeObject): string | undefined {
  const spec = deployment.spec as { template?: { spec?: { containers?: Array<{ image?: string }> } } };
  return spec.template?.spec?.containers?.[0]?.image;
}

function modelValues(model: ChartModel): Record<string, unknown> {
  const { spec } = model.deployment;
  const find = (kind: string) => model.objects.find((object) => object.kind === kind);
  const deployment = find("Deployment") as KubeObject;
  const hpa = find("HorizontalPodAutoscaler") as
    | { spec: { minReplicas: number; maxReplicas: number } }
    | undefined;
  const replicas = (deployment.spec as { replicas?: number }).replicas;
  return {
    image: containerImage(deployment),
    imagePullPolicy: spec.kubernetes.imagePullPolicy,
    ...(replicas === undefined ? {} : { replicas }),
    ...(hpa ? { autoscaling: { minReplicas: hpa.spec.minReplicas, maxReplicas: hpa.spec.maxReplicas } } : {}),
    resources: { cpu: spec.resources.cpu, memory: spec.resources.memory },
    service: { type: spec.service.type, port: spec.service.port },
    ...(spec.ingress
      ? { ingress: { enabled: true, host: spec.ingress.host, className: spec.ingress.className } }
      : {}),
    networkPolicy: { enabled: find("NetworkPolicy") !== undefined },
    ...(find("ServiceMonitor") ? { serviceMonitor: { enabled: true } } : {}),
  };
}

/** The holes of one object: which of its fields come from values. */
function holesOf(object: KubeObject): Hole[] {
  const holes: Hole[] = [];
  const spec = object.spec as Record<string, unknown>;
  switch (object.kind) {
    case "Deployment": {
      const pod = (spec.template as { spec: Record<string, unknown> }).spec;
      if (spec.replicas !== undefined)
        holes.push({ path: ["spec", "replicas"], value: "$m.replicas", quote: false });
      for (const list of ["initContainers", "containers"] as const) {
        const containers = (pod[list] as unknown[] | undefined) ?? [];
        containers.forEach((_container, index) => {
          const at = ["spec", "template", "spec", list, index];
          holes.push({ path: [...at, "image"], value: "$m.image", quote: true });
          holes.push({ path: [...at, "imagePullPolicy"], value: "$m.imagePullPolicy", quote: true });
          if (list === "containers") {
            for (const bound of ["requests", "limits"]) {
              holes.push({
                path: [...at, "resources", bound, "cpu"],
                value: "$m.resources.cpu",
                quote: true,
              });
              holes.push({
                path: [...at, "resources", bound, "memory"],
                value: "$m.resources.memory",
                quote: true,
              });
            }
          }
        });
      }
      break;
    }
    case "Service":
      holes.push({ path: ["spec", "type"], value: "$m.service.type", quote: true });
      holes.push({ path: ["spec", "ports", 0, "port"], value: "$m.service.port", quote: false });
      break;
    case "Ingress": {
      holes.push({ path: ["spec", "ingressClassName"], value: "$m.ingress.className", quote: true });
      holes.push({ path: ["spec", "rules", 0, "host"], value: "$m.ingress.host", quote: true });
      const backend = ["spec", "rules", 0, "http", "paths", 0, "backend", "service", "port", "number"];
      holes.push({ path: backend, value: "$m.service.port", quote: false });
      if (spec.tls)
        holes.push({ path: ["spec", "tls", 0, "hosts", 0], value: "$m.ingress.host", quote: true });
      break;
    }
    case "HorizontalPodAutoscaler":
      holes.push({ path: ["spec", "minReplicas"], value: "$m.autoscaling.minReplicas", quote: false });
      holes.push({ path: ["spec", "maxReplicas"], value: "$m.autoscaling.maxReplicas", quote: false });
      break;
  }
  return holes;
}

const TOGGLES: Record<string, string> = {
  Ingress: "$m.ingress.enabled",
  NetworkPolicy: "$m.networkPolicy.enabled",
  ServiceMonitor: "$m.serviceMonitor.enabled",
  PrometheusRule: "$m.serviceMonitor.enabled",
};

function template(modelName: string, object: KubeObject): string {
  const copy = structuredClone(object);
  const expressions: string[] = [];
  for (const hole of holesOf(copy)) {
    const parent = hole.path
      .slice(0, -1)
      .reduce<unknown>((at, key) => (at as Record<string, unknown>)?.[key], copy);
    const key = hole.path.at(-1) as string | number;
    if (parent === undefined || (parent as Record<string, unknown>)[key] === undefined) continue;
    (parent as Record<string, unknown>)[key] = `__BERTH_HELM_${expressions.length}__`;
    expressions.push(hole.quote ? `{{ ${hole.value} | quote }}` : `{{ ${hole.value} }}`);
  }
  // Text that happens to contain "{{" (the spec in the ConfigMap, annotations) must stay literal.
  let text = stringify(copy, { lineWidth: 0, aliasDuplicateObjects: false }).replaceAll("{{", '{{ "{{" }}');
  text = text.replace(/__BERTH_HELM_(\d+)__/g, (_match, index: string) => expressions[Number(index)] ?? "");
  const header = `{{- $m := index .Values.models ${JSON.stringify(modelName)} }}\n`;
  const toggle = TOGGLES[object.kind];
  return toggle ? `${header}{{- if ${toggle} }}\n${text}{{- end }}\n` : `${header}${text}`;
}

function readme(chartName: string, models: readonly ChartModel[]): string {
  const inFlight = models.some((model) =>
    model.objects.some(
      (object) =>
        object.kind === "HorizontalPodAutoscaler" && JSON.stringify(object).includes(IN_FLIGHT_METRIC),
    ),
  );
  return `# ${chartName}

Written by \`berth render --helm\`. With its default values, \`helm template\` renders exactly the objects
\`berth render\` prints for the same spec. Per-model values live under \`models.<name>\` in values.yaml
(image, replicas or autoscaling bounds, resources, service, ingress).

    helm install ${chartName} . --namespace NAMESPACE
    helm template ${chartName} . --set models.${models[0]?.deployment.metadata.name ?? "NAME"}.image=REGISTRY/berth:TAG
${
  inFlight
    ? `
## Autoscaling on requests in flight

The HorizontalPodAutoscaler scales on the pods metric \`${IN_FLIGHT_METRIC}\` (requests running plus waiting
per replica). Kubernetes gets it from a custom metrics adapter; with prometheus-adapter, add this rule:

    rules:
      - seriesQuery: 'berth_requests_running{namespace!="",pod!=""}'
        resources:
          overrides: { namespace: { resource: namespace }, pod: { resource: pod } }
        name: { as: "${IN_FLIGHT_METRIC}" }
        metricsQuery: 'sum(berth_requests_running{<<.LabelMatchers>>} + berth_requests_waiting{<<.LabelMatchers>>}) by (<<.GroupBy>>)'

Without an adapter the HPA reports FailedGetPodsMetric and keeps the current replica count; set
\`spec.kubernetes.autoscalingMetric: cpu\` in the Berth spec to scale on CPU instead.
`
    : ""
}`;
}
