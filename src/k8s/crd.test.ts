// The generated CRD against the zod spec it comes from: every node structural, every zod refine covered by an
// override, every CRD default equal to zod's, and the checked-in copy in deploy/ equal to what is generated.
// (What the real API server accepts and refuses is test/k8s/crd.test.ts.)

import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { z } from "zod";
import { modelDeploymentSpecSchema } from "../spec/schema.js";
import { parseDuration } from "../spec/units.js";
import { modelDeploymentCrd, SPEC_FIELD_OVERRIDES, specSchema } from "./crd.js";
import { CrdSchemaError, type OpenApiSchema, structuralSchema } from "./crd-schema.js";

type AnyZod = z.ZodType & { _zod: { def: Record<string, unknown> & { type: string } } };

/** Dotted paths of spec fields whose zod checks JSON Schema cannot show (refine, transform, union). */
function refinedPaths(schema: AnyZod, path: string[] = []): string[] {
  const def = schema._zod.def;
  const here = path.join(".");
  const checks = (def.checks as Array<{ _zod: { def: { check: string } } }> | undefined) ?? [];
  const custom = checks.some((check) => check._zod.def.check === "custom");
  switch (def.type) {
    case "optional":
    case "default":
    case "prefault":
    case "nullable":
      return refinedPaths(def.innerType as AnyZod, path);
    case "object": {
      const shape = def.shape as Record<string, AnyZod>;
      const nested = Object.entries(shape).flatMap(([key, child]) => refinedPaths(child, [...path, key]));
      // The spec's own superRefine is covered by SPEC_RULES (CEL), checked on the API server.
      return custom && here !== "" ? [here, ...nested] : nested;
    }
    case "pipe":
    case "union":
    case "transform":
      return [here];
    default:
      return custom ? [here] : [];
  }
}

function walk(schema: OpenApiSchema, visit: (node: OpenApiSchema, path: string) => void, path = ""): void {
  visit(schema, path);
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    walk(child, visit, path ? `${path}.${name}` : name);
  }
  if (schema.items) walk(schema.items, visit, `${path}[]`);
}

describe("the ModelDeployment CRD", () => {
  it("has a type on every node and no $ref or typed anyOf (a structural schema)", () => {
    const crd = modelDeploymentCrd();
    const text = JSON.stringify(crd);
    expect(text).not.toContain("$ref");
    const untyped: string[] = [];
    walk(specSchema(), (node, path) => {
      if (node.type === undefined && node["x-kubernetes-int-or-string"] !== true) untyped.push(path);
      for (const branch of node.anyOf ?? []) {
        if (!node["x-kubernetes-int-or-string"] && branch.type) untyped.push(`${path} (typed anyOf)`);
      }
    });
    expect(untyped).toEqual([]);
  });

  it("overrides exactly the fields whose zod checks JSON Schema cannot show", () => {
    const refined = refinedPaths(modelDeploymentSpecSchema as unknown as AnyZod).sort();
    expect(refined).toEqual(Object.keys(SPEC_FIELD_OVERRIDES).sort());
  });

  it("defaults every field the way zod does", () => {
    // Optional objects are given (with only their required fields), so their fields' defaults show.
    const parsed = modelDeploymentSpecSchema.parse({
      model: { source: "model.gguf", cache: { claimName: "models" } },
      ingress: { host: "gpt2.example.com" },
    });
    const checked: string[] = [];
    walk(specSchema(), (node, path) => {
      if (node.default === undefined || node.type === "object") return;
      const zodValue = path
        .split(".")
        .reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], parsed);
      // Durations: the CRD holds the text, zod the milliseconds it means.
      const crdValue = node.pattern?.includes("ms|s|m|h")
        ? parseDuration(String(node.default))
        : node.default;
      expect({ path, value: crdValue }).toEqual({ path, value: zodValue });
      checked.push(path);
    });
    expect(checked).toEqual(
      expect.arrayContaining([
        "autoscaling.stableWindow",
        "resources.cpu",
        "replicas.min",
        "engine.parallel",
      ]),
    );
  });

  it("defaults an object zod prefaults, so the API server fills its fields", () => {
    const schema = specSchema();
    expect(schema.properties?.replicas?.default).toEqual({});
    expect(schema.properties?.model?.default).toBeUndefined();
    expect(schema.required).toEqual(["model"]);
  });

  it("puts each cross-field rule where it can name the field", () => {
    const schema = specSchema();
    const rules = schema.properties?.replicas?.["x-kubernetes-validations"] ?? [];
    expect(rules.map((rule) => rule.fieldPath)).toEqual([".max", ".initial", ".desired"]);
    expect(schema.properties?.autoscaling?.["x-kubernetes-validations"]?.[0]?.fieldPath).toBe(".panicWindow");
  });

  it("refuses a zod shape with no structural form, naming the field", () => {
    expect(() =>
      structuralSchema({
        type: "object",
        properties: { a: { anyOf: [{ type: "string" }, { type: "number" }] } },
      }),
    ).toThrow(new CrdSchemaError("a", "anyOf has no structural form; give an override"));
    expect(() =>
      structuralSchema({ type: "object", properties: { b: { type: ["string", "null"] } } }),
    ).toThrow(/^b: type \["string","null"\] is not one type/);
  });

  it("matches the checked-in copy in deploy/crds (vitest -u rewrites it)", async () => {
    const text = `# Generated from src/spec/schema.ts by src/k8s/crd.ts; do not edit (npx vitest run src/k8s/crd.test.ts -u).\n${stringify(modelDeploymentCrd(), { lineWidth: 0 })}`;
    await expect(text).toMatchFileSnapshot("../../deploy/crds/modeldeployments.berth.dev.yaml");
  });
});
