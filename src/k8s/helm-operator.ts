// `berth install --helm DIR`: the objects of `berth install` as a Helm chart. The CRD goes in crds/ (Helm
// installs it before the templates and never deletes it); the namespace is the release's; image and replica
// counts are values. Pure: returns the chart's files as a map of relative path → text.
import { stringify } from "yaml";
import { DEFAULT_IMAGE, type InstallOptions, installObjects, OPERATOR_NAME } from "./install.js";
import type { KubeObject } from "./objects.js";

const NAMESPACE_MARK = "berth-helm-release-namespace";
const IMAGE_MARK = "berth-helm-image";

export function operatorChart(options: InstallOptions = {}): Map<string, string> {
  const image = options.image ?? DEFAULT_IMAGE;
  const values = {
    image,
    imagePullPolicy: options.imagePullPolicy ?? "IfNotPresent",
    operator: { replicas: options.operatorReplicas ?? 2 },
    gateway: { replicas: options.gatewayReplicas ?? 2 },
  };
  const objects = installObjects({ ...options, namespace: NAMESPACE_MARK, image: IMAGE_MARK });
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
    `# Defaults render exactly what \`berth install --dry-run -o yaml\` prints.\n${stringify(values)}`,
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
  if (text.includes(IMAGE_MARK))
    throw new Error(`${object.kind}/${object.metadata.name}: image left untemplated`);
  return text;
}
