// `berth install --helm DIR`: the objects of `berth install` as a Helm chart. The CRD goes in crds/ (Helm
// installs it before the templates and never deletes it); the namespace is the release's; image, replica
// counts and the gateway's API keys Secret are values. Pure: returns the chart's files as a map of relative
// path → text.
import { stringify } from "yaml";
import {
  API_KEYS_MOUNT,
  DEFAULT_IMAGE,
  type InstallOptions,
  installObjects,
  OPERATOR_NAME,
} from "./install.js";
import type { KubeObject } from "./objects.js";

const NAMESPACE_MARK = "berth-helm-release-namespace";
const IMAGE_MARK = "berth-helm-image";
const API_KEYS_MARK = "berth-helm-api-keys-secret";
// The gateway's API keys Secret: what install renders with --api-keys-secret, each block under a Helm `if`.
const API_KEYS_VALUE = ".Values.gateway.apiKeysSecret";
const API_KEYS_BLOCKS = ["fsGroup", "envFrom", "volumeMounts", "volumes"];

export function operatorChart(options: InstallOptions = {}): Map<string, string> {
  const image = options.image ?? DEFAULT_IMAGE;
  const values = {
    image,
    imagePullPolicy: options.imagePullPolicy ?? "IfNotPresent",
    operator: { replicas: options.operatorReplicas ?? 2 },
    gateway: { replicas: options.gatewayReplicas ?? 2, apiKeysSecret: options.apiKeysSecret ?? "" },
  };
  const objects = installObjects({
    ...options,
    namespace: NAMESPACE_MARK,
    image: IMAGE_MARK,
    apiKeysSecret: API_KEYS_MARK,
  });
  const files = new Map<string, string>();
  files.set(
    "Chart.yaml",
    stringify({
      apiVersion: "v2",
      name: "berth-operator",
      description: "Berth operator mode: the ModelDeployment CRD, controller, gateway and their RBAC",
      type: "application",
      version: "0.1.0",
      appVersion: image.split(":").at(-1) ?? "latest",
    }),
  );
  files.set(
    "values.yaml",
    "# Defaults render exactly what `berth install --dry-run -o yaml` prints. gateway.apiKeysSecret: a Secret of\n" +
      `# API keys the gateway mounts at ${API_KEYS_MOUNT} and gets as env (\`berth install --help\`).\n${stringify(values)}`,
  );
  for (const object of objects) {
    if (object.kind === "Namespace") continue; // helm install --namespace NS --create-namespace
    if (object.kind === "CustomResourceDefinition") {
      // Not a template: Helm does not render crds/, so it carries the real image's version label.
      const crd = installObjects(options)[0] as KubeObject;
      files.set(`crds/${object.metadata.name}.yaml`, stringify(crd, { lineWidth: 0 }));
      continue;
    }
    files.set(`templates/${object.metadata.name}-${object.kind.toLowerCase()}.yaml`, template(object));
  }
  return files;
}

function template(object: KubeObject): string {
  const copy = structuredClone(object);
  if (copy.kind === "Deployment") {
    const spec = copy.spec as { replicas: unknown };
    spec.replicas = `__replicas_${copy.metadata.name === OPERATOR_NAME ? "operator" : "gateway"}__`;
  }
  let text = stringify(copy, { lineWidth: 0, aliasDuplicateObjects: false });
  text = text
    .replaceAll(NAMESPACE_MARK, "{{ .Release.Namespace }}")
    .replaceAll(`image: ${IMAGE_MARK}`, "image: {{ .Values.image | quote }}")
    .replace(/imagePullPolicy: \S+/g, "imagePullPolicy: {{ .Values.imagePullPolicy | quote }}")
    .replace("__replicas_operator__", "{{ .Values.operator.replicas }}")
    .replace("__replicas_gateway__", "{{ .Values.gateway.replicas }}");
  if (text.includes(API_KEYS_MARK)) {
    text = onlyIf(text, API_KEYS_VALUE, API_KEYS_BLOCKS).replaceAll(
      API_KEYS_MARK,
      `{{ ${API_KEYS_VALUE} | quote }}`,
    );
  }
  if (text.includes(IMAGE_MARK))
    throw new Error(`${object.kind}/${object.metadata.name}: image left untemplated`);
  return text;
}

/** Wraps each named key's block (its line and the deeper-indented lines after it) in `{{- if condition }}`. */
function onlyIf(text: string, condition: string, keys: readonly string[]): string {
  const lines = text.split("\n");
  const indentOf = (line: string) => line.length - line.trimStart().length;
  const wrapped: string[] = [];
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? "";
    const key = /^ *([A-Za-z]+):/.exec(line)?.[1];
    if (key === undefined || !keys.includes(key)) {
      wrapped.push(line);
      continue;
    }
    let end = index + 1;
    while (end < lines.length && indentOf(lines[end] ?? "") > indentOf(line)) end++;
    const indent = " ".repeat(indentOf(line));
    wrapped.push(`${indent}{{- if ${condition} }}`, ...lines.slice(index, end), `${indent}{{- end }}`);
    index = end - 1;
  }
  return wrapped.join("\n");
}
