// Which specs Berth's autoscale loop scales (the rest: a CPU HPA, or a fixed count the operator sets).
import { describe, expect, it } from "vitest";
import { parseSpecText } from "../spec/index.js";
import { berthAutoscales } from "./autoscale.js";

function spec(fields: string) {
  const [deployment] = parseSpecText(`apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: m }
spec:
  model: { source: "tiny://tiny" }
${fields}`);
  if (!deployment) throw new Error("no spec");
  return deployment;
}

describe("berthAutoscales", () => {
  it.each([
    ["  replicas: { min: 1, max: 4 }", true],
    // Scale to zero and back needs the loop even with one replica at most.
    ["  replicas: { min: 0, max: 1 }", true],
    ["  replicas: { min: 2, max: 2 }", false],
    ["  replicas: { min: 1, max: 4 }\n  autoscaling: { enabled: false }", false],
    ["  replicas: { min: 1, max: 4 }\n  kubernetes: { autoscalingMetric: cpu }", false],
    ["  replicas: { min: 1, max: 4 }\n  kubernetes: { autoscalingMetric: inFlight }", true],
  ])("%s → %s", (fields, expected) => {
    expect(berthAutoscales(spec(fields))).toBe(expected);
  });
});
