// Turns the JSON Schema that zod writes for the spec into a structural OpenAPI v3 schema, the kind a
// CustomResourceDefinition must carry: a type on every node, no $ref, no anyOf of types, no
// additionalProperties: false (the API server prunes or, with fieldValidation=Strict, refuses unknown fields).
// Pure. Anything it cannot express faithfully throws, naming the field, unless the caller gives an override.

/** The OpenAPI v3 subset a structural CRD schema uses. */
export interface OpenApiSchema {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description?: string;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  items?: OpenApiSchema;
  minItems?: number;
  maxItems?: number;
  additionalProperties?: OpenApiSchema;
  enum?: unknown[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  anyOf?: OpenApiSchema[];
  "x-kubernetes-int-or-string"?: boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-validations"?: ValidationRule[];
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
}

/** A CEL rule (x-kubernetes-validations): the API server refuses an object for which `rule` is false. */
export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  /** Where the error points, relative to the node carrying the rule (".max" → spec.replicas.max). */
  fieldPath?: string;
  /** With a rule that reads oldSelf: whether it also runs on create. */
  optionalOldSelf?: boolean;
}

/**
 * A field whose zod check JSON Schema cannot show (a refine, a transform, a union of types):
 * the structural schema to use there instead, and why.
 */
export interface FieldOverride {
  schema: OpenApiSchema;
  why: string;
}

/** JSON Schema as zod's toJSONSchema writes it (target openapi-3.0), read loosely. */
type JsonSchema = Record<string, unknown>;

// JSON Schema formats the API server knows; zod also writes formats of its own (starts_with, ...).
const KUBERNETES_FORMATS = new Set(["int32", "int64", "float", "double", "byte", "date", "date-time", "uri"]);
const COPIED_KEYWORDS = [
  "description",
  "enum",
  "default",
  "pattern",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
] as const;

export class CrdSchemaError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/**
 * The structural schema of `json` (the node at `path`, e.g. ["spec"]). `overrides` is keyed by the
 * dotted path below the root ("autoscaling.stableWindow").
 */
export function structuralSchema(
  json: JsonSchema,
  overrides: Readonly<Record<string, FieldOverride>> = {},
  path: readonly string[] = [],
): OpenApiSchema {
  const key = path.join(".");
  const override = overrides[key];
  if (override) return structuredClone(override.schema);
  const field = key === "" ? "(root)" : key;
  for (const keyword of ["$ref", "anyOf", "oneOf", "allOf", "not"]) {
    if (keyword in json)
      throw new CrdSchemaError(field, `${keyword} has no structural form; give an override`);
  }
  const type = json.type;
  if (typeof type !== "string") {
    throw new CrdSchemaError(field, `type ${JSON.stringify(type)} is not one type; give an override`);
  }
  const out: OpenApiSchema = {};
  if (json.const !== undefined) out.enum = [json.const];
  for (const keyword of COPIED_KEYWORDS) {
    if (json[keyword] !== undefined)
      (out as Record<string, unknown>)[keyword] = structuredClone(json[keyword]);
  }
  if (typeof json.format === "string" && KUBERNETES_FORMATS.has(json.format)) out.format = json.format;
  switch (type) {
    case "object":
      return { type, ...out, ...objectParts(json, overrides, path, field) };
    case "array": {
      const items = json.items as JsonSchema | undefined;
      if (!items) throw new CrdSchemaError(field, "an array without items");
      return {
        type,
        ...out,
        items: structuralSchema(items, overrides, [...path, "[]"]),
        ...(typeof json.minItems === "number" ? { minItems: json.minItems } : {}),
        ...(typeof json.maxItems === "number" ? { maxItems: json.maxItems } : {}),
      };
    }
    case "string":
    case "integer":
    case "number":
    case "boolean":
      return { type, ...out };
    default:
      throw new CrdSchemaError(field, `type "${type}" is not allowed in a CRD schema`);
  }
}

function objectParts(
  json: JsonSchema,
  overrides: Readonly<Record<string, FieldOverride>>,
  path: readonly string[],
  field: string,
): Pick<
  OpenApiSchema,
  "properties" | "required" | "additionalProperties" | "x-kubernetes-preserve-unknown-fields"
> {
  const properties = json.properties as Record<string, JsonSchema> | undefined;
  const additional = json.additionalProperties;
  if (properties && Object.keys(properties).length > 0) {
    // additionalProperties: false is what structural schemas already mean (unknown fields are pruned,
    // or refused under fieldValidation=Strict, kubectl's default); anything else would be a second meaning.
    if (additional !== undefined && additional !== false) {
      throw new CrdSchemaError(field, "an object with both properties and additionalProperties");
    }
    const required = Array.isArray(json.required) ? (json.required as string[]) : [];
    return {
      properties: Object.fromEntries(
        Object.entries(properties).map(([name, child]) => [
          name,
          structuralSchema(child, overrides, [...path, name]),
        ]),
      ),
      ...(required.length > 0 ? { required: [...required] } : {}),
    };
  }
  if (additional && typeof additional === "object") {
    // A record (labels, annotations): keys are free, values are typed.
    return { additionalProperties: structuralSchema(additional as JsonSchema, overrides, [...path, "*"]) };
  }
  throw new CrdSchemaError(field, "an object with no declared fields (free-form needs an override)");
}
