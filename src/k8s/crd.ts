// The CustomResourceDefinition modeldeployments.berth.dev, generated from the zod spec (src/spec/schema.ts):
// the CR's spec IS the spec file's spec, so `kubectl apply -f berth.yaml` works and the API server refuses
// what `berth validate` refuses. Cross-field checks are CEL rules that name the field; the status and
// scale subresources carry what the operator reports (contract: /work/coord/INTERFACES.md).
import { z } from "zod";
import { API_VERSION, KIND, modelDeploymentSpecSchema } from "../spec/schema.js";
import { formatDuration } from "../spec/units.js";
import {
  type FieldOverride,
  type OpenApiSchema,
  structuralSchema,
  type ValidationRule,
} from "./crd-schema.js";
import type { KubeObject } from "./objects.js";

export const CRD_GROUP = "berth.dev";
export const CRD_VERSION = "v1alpha1";
export const CRD_KIND = KIND;
export const CRD_PLURAL = "modeldeployments";
export const CRD_SINGULAR = "modeldeployment";
export const CRD_SHORT_NAMES = ["md"];
export const CRD_NAME = `${CRD_PLURAL}.${CRD_GROUP}`;
/** The condition types the operator writes in status.conditions. */
export const CONDITION_TYPES = ["Available", "Progressing", "Degraded", "ModelReady"] as const;

// The grammar of parseDuration (src/spec/units.ts): a bare number of seconds, or number+unit parts.
const DURATION_PATTERN = String.raw`^\s*(\d+(\.\d+)?|(\d+(\.\d+)?(ms|s|m|h))+)\s*$`;
const DURATION_MAX_LENGTH = 64;
// The same grammar as a CEL string literal (no backslashes to escape).
const CEL_DURATION = "'^[ \\t]*([0-9]+([.][0-9]+)?|([0-9]+([.][0-9]+)?(ms|s|m|h))+)[ \\t]*$'";
// CEL's duration() wants a unit; a bare number means seconds, as in parseDuration.
const celDuration = (field: string) =>
  `(${field}.trim().matches('^[0-9.]+$') ? duration(${field}.trim() + 's') : duration(${field}.trim()))`;

/** What the zod spec defaults to, read from a parse of the smallest spec (the output, after transforms). */
function zodDefault(path: readonly string[]): unknown {
  const parsed = modelDeploymentSpecSchema.parse({ model: { source: "model.gguf" } });
  return path.reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], parsed);
}

function durationField(path: readonly string[]): FieldOverride {
  return {
    schema: {
      type: "string",
      maxLength: DURATION_MAX_LENGTH,
      pattern: DURATION_PATTERN,
      default: formatDuration(zodDefault(path) as number),
    },
    why: "a duration string that zod turns into milliseconds: the pattern is parseDuration's grammar",
  };
}

/**
 * Fields whose zod checks JSON Schema cannot show (refine, transform, a union of types). The CRD test
 * walks the zod schema and fails when a refined field is missing here, so a new refine cannot drift.
 */
export const SPEC_FIELD_OVERRIDES: Readonly<Record<string, FieldOverride>> = {
  "model.source": {
    schema: {
      type: "string",
      minLength: 1,
      // Bounded so the API server can cost the CEL rules below; a path or URL is shorter than this.
      maxLength: 4096,
      "x-kubernetes-validations": [
        { rule: "self == self.trim()", message: "must not have leading or trailing whitespace" },
        {
          rule: "!self.matches('^[A-Za-z][A-Za-z0-9+.-]*://') || self.matches('^(hf|https|http|s3|file|tiny)://')",
          message: "unknown scheme (one of hf://, https://, http://, s3://, file://, tiny://, or a path)",
        },
      ],
    },
    why: "the model store's parser checks each scheme's parts (hub names, revisions, buckets); the API server checks the scheme, the operator the rest (Degraded, reason InvalidSpec)",
  },
  "resources.cpu": {
    schema: {
      "x-kubernetes-int-or-string": true,
      anyOf: [{ type: "integer" }, { type: "string" }],
      pattern: String.raw`^(\d+(\.\d+)?|\d+m)$`,
      minimum: 0,
      default: zodDefault(["resources", "cpu"]),
    },
    why: "zod takes a string or a number; a structural schema has only int-or-string (a YAML float such as 0.5 must be quoted in a CR)",
  },
  "autoscaling.stableWindow": durationField(["autoscaling", "stableWindow"]),
  "autoscaling.panicWindow": durationField(["autoscaling", "panicWindow"]),
  "autoscaling.scaleDownDelay": durationField(["autoscaling", "scaleDownDelay"]),
  "autoscaling.idleToZero": durationField(["autoscaling", "idleToZero"]),
};

// Static messages: a messageExpression with string(int) is costed far over the API server's budget.
const betweenMinAndMax = "must be between spec.replicas.min and spec.replicas.max";

/**
 * The spec's cross-field checks (the superRefine in schema.ts) as CEL, keyed by the node that carries them.
 * Each tolerates absent fields: the API server checks a default (`replicas: {}`) before filling its fields,
 * and a stored object always has them filled.
 */
export const SPEC_RULES: Readonly<Record<string, ValidationRule[]>> = {
  replicas: [
    {
      rule: "!has(self.min) || !has(self.max) || self.min <= self.max",
      message: "must be ≥ spec.replicas.min",
      fieldPath: ".max",
    },
    {
      rule: "!has(self.initial) || !has(self.min) || !has(self.max) || (self.initial >= self.min && self.initial <= self.max)",
      message: betweenMinAndMax,
      fieldPath: ".initial",
    },
    {
      rule: "!has(self.desired) || !has(self.min) || !has(self.max) || (self.desired >= self.min && self.desired <= self.max)",
      message: betweenMinAndMax,
      fieldPath: ".desired",
    },
  ],
  autoscaling: [
    {
      // Only between two valid durations: the pattern names a bad one, duration() would fail on it.
      rule: `!has(self.panicWindow) || !has(self.stableWindow) || !self.panicWindow.matches(${CEL_DURATION}) || !self.stableWindow.matches(${CEL_DURATION}) || ${celDuration("self.panicWindow")} <= ${celDuration("self.stableWindow")}`,
      message: "must not be longer than spec.autoscaling.stableWindow",
      fieldPath: ".panicWindow",
    },
  ],
  "": [
    {
      rule: "!has(self.kubernetes) || !(has(self.model.cache) && has(self.kubernetes.modelVolumeClaim))",
      message:
        "give either spec.model.cache (Berth pulls into a shared claim) or spec.kubernetes.modelVolumeClaim (a claim that already holds the file), not both",
      fieldPath: ".model.cache",
    },
  ],
};

/** The spec's structural schema: zod's JSON Schema, converted, with the overrides and CEL rules above. */
export function specSchema(): OpenApiSchema {
  const json = z.toJSONSchema(modelDeploymentSpecSchema, {
    io: "input",
    target: "openapi-3.0",
    unrepresentable: "throw",
  }) as Record<string, unknown>;
  const schema = structuralSchema(json, SPEC_FIELD_OVERRIDES);
  for (const [path, rules] of Object.entries(SPEC_RULES)) {
    const node = path === "" ? schema : path.split(".").reduce(childOf, schema);
    node["x-kubernetes-validations"] = [...(node["x-kubernetes-validations"] ?? []), ...rules];
  }
  return schema;
}

function childOf(node: OpenApiSchema, name: string): OpenApiSchema {
  const child = node.properties?.[name];
  if (!child) throw new Error(`the spec schema has no field "${name}" for a CEL rule`);
  return child;
}

const condition: OpenApiSchema = {
  type: "object",
  required: ["type", "status"],
  properties: {
    type: { type: "string", description: `One of ${CONDITION_TYPES.join(", ")}.` },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    reason: { type: "string", description: "A CamelCase word a person can search for." },
    message: { type: "string" },
    lastTransitionTime: { type: "string", format: "date-time" },
    observedGeneration: { type: "integer", format: "int64", minimum: 0 },
  },
};

const statusSchema: OpenApiSchema = {
  type: "object",
  description: "Written by `berth operator` through the status subresource.",
  properties: {
    observedGeneration: { type: "integer", format: "int64" },
    replicas: {
      type: "integer",
      format: "int32",
      description: "Pods of the model (the scale subresource's status).",
    },
    readyReplicas: { type: "integer", format: "int32" },
    desiredReplicas: {
      type: "integer",
      format: "int32",
      description: "What the autoscaler or the spec asks for.",
    },
    selector: {
      type: "string",
      description: "The pods' label selector (for the scale subresource and HPAs).",
    },
    conditions: {
      type: "array",
      items: condition,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
    },
  },
};

// metadata.name prefixes the rendered objects' names, so it is a DNS label of ≤ 53 characters, as in the spec file.
const nameRule: ValidationRule = {
  rule: "self.metadata.name.size() <= 53 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
  message:
    "metadata.name must be at most 53 characters of lowercase letters, digits and '-' (it prefixes Kubernetes object names)",
};

export function modelDeploymentCrd(): KubeObject {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: CRD_NAME,
      labels: { "app.kubernetes.io/part-of": "berth", "app.kubernetes.io/managed-by": "berth" },
    },
    spec: {
      group: CRD_GROUP,
      scope: "Namespaced",
      names: {
        kind: CRD_KIND,
        listKind: `${CRD_KIND}List`,
        plural: CRD_PLURAL,
        singular: CRD_SINGULAR,
        shortNames: [...CRD_SHORT_NAMES],
        categories: ["berth"],
      },
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: "A model deployment: the spec of a berth.yaml file, run by `berth operator`.",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec: specSchema(),
                status: statusSchema,
              },
              "x-kubernetes-validations": [nameRule],
            },
          },
          subresources: {
            status: {},
            scale: {
              specReplicasPath: ".spec.replicas.desired",
              statusReplicasPath: ".status.replicas",
              labelSelectorPath: ".status.selector",
            },
          },
          additionalPrinterColumns: [
            { name: "Ready", type: "integer", jsonPath: ".status.readyReplicas" },
            { name: "Desired", type: "integer", jsonPath: ".status.desiredReplicas" },
            { name: "Model", type: "string", jsonPath: ".spec.model.source" },
            {
              name: "Available",
              type: "string",
              jsonPath: '.status.conditions[?(@.type=="Available")].status',
            },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
        },
      ],
    },
  };
}

/** `apiVersion` of a ModelDeployment: the same string as the spec file's. */
export const CR_API_VERSION = API_VERSION;
