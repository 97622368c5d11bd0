// spec.replicas.initial: how many replicas start before the autoscaler has seen load; spec.replicas.desired
// (what `kubectl scale` / `berth scale` asked for, through the CRD's scale subresource) comes first.
import { describe, expect, it } from "vitest";
import { SpecError } from "./errors.js";
import { parseSpecText } from "./load.js";
import { initialReplicas } from "./schema.js";

const spec = (replicas: string) => `apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: m
spec:
  model:
    source: tiny://tiny
  replicas:
${replicas}
`;

describe("spec.replicas.initial", () => {
  it.each([
    ["    min: 1\n    max: 4\n    initial: 2", 2],
    ["    min: 2\n    max: 4", 2],
    ["    min: 0\n    max: 3", 1],
    ["    min: 0\n    max: 3\n    initial: 0", 0],
    ["    min: 1\n    max: 4\n    initial: 2\n    desired: 3", 3],
    ["    min: 0\n    max: 4\n    desired: 0", 0],
  ])("%j starts %i", (replicas, expected) => {
    const [deployment] = parseSpecText(spec(replicas));
    expect(deployment && initialReplicas(deployment.spec)).toBe(expected);
  });

  it.each(["initial", "desired"])("rejects a %s count outside min..max with its line", (field) => {
    const text = spec(`    min: 1\n    max: 4\n    ${field}: 5`);
    expect(() => parseSpecText(text, "berth.yaml")).toThrow(
      `berth.yaml:11 spec.replicas.${field}: must be between spec.replicas.min (1) and spec.replicas.max (4)`,
    );
  });

  it("rejects an initial count outside min..max as a SpecError", () => {
    expect(() => parseSpecText(spec("    min: 1\n    max: 4\n    initial: 5"), "berth.yaml")).toThrow(
      SpecError,
    );
    try {
      parseSpecText(spec("    min: 1\n    max: 4\n    initial: 5"), "berth.yaml");
    } catch (error) {
      expect((error as SpecError).message).toBe(
        "berth.yaml:11 spec.replicas.initial: must be between spec.replicas.min (1) and spec.replicas.max (4)",
      );
    }
  });
});
