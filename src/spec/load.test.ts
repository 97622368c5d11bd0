import { describe, expect, it } from "vitest";
import { SpecError } from "./errors.js";
import { parseSpecText } from "./load.js";
import { parseDuration } from "./units.js";

const VALID = `apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: gpt2
spec:
  model:
    source: tiny://tiny
  replicas:
    min: 1
    max: 3
`;

function problemsOf(text: string): string[] {
  try {
    parseSpecText(text, "berth.yaml");
  } catch (error) {
    if (error instanceof SpecError) return error.message.split("\n");
    throw error;
  }
  throw new Error("expected the spec to be rejected");
}

describe("parseSpecText", () => {
  it("applies defaults to a minimal spec", () => {
    const [deployment] = parseSpecText(VALID);
    expect(deployment?.spec.engine).toEqual({ kind: "llamacpp", parallel: 8 });
    expect(deployment?.spec.port).toBe(9000);
    expect(deployment?.spec.autoscaling.scaleDownDelay).toBe(30_000);
    expect(deployment?.spec.autoscaling.idleToZero).toBe(600_000);
    expect(deployment?.spec.service).toEqual({ type: "ClusterIP", port: 80 });
    expect(deployment?.spec.routing.strategy).toBe("least-load");
    expect(deployment?.spec.ingress).toBeUndefined();
  });

  it("reads several models from several documents", () => {
    const second = VALID.replace("name: gpt2", "name: other");
    expect(parseSpecText(`${VALID}---\n${second}`).map((d) => d.metadata.name)).toEqual(["gpt2", "other"]);
  });

  it("parses the durations people write", () => {
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("10")).toBe(10_000);
    expect(parseDuration("10 minutes")).toBeUndefined();
    expect(parseDuration("")).toBeUndefined();
  });

  // Each broken spec must be rejected with the exact line and field of the problem.
  const broken: Array<{ name: string; text: string; expected: string }> = [
    {
      name: "max below min",
      text: VALID.replace("max: 3", "max: 0"),
      expected: "berth.yaml:10 spec.replicas.max: must be ≥ spec.replicas.min (1)",
    },
    {
      name: "missing model",
      text: VALID.replace("  model:\n    source: tiny://tiny\n", ""),
      expected: "berth.yaml:6 spec.model: is required",
    },
    {
      name: "unknown field (typo)",
      text: VALID.replace("  replicas:", "  replica:"),
      expected: "berth.yaml:8 spec.replica: unknown field",
    },
    {
      name: "wrong type",
      text: VALID.replace("min: 1", "min: one"),
      expected: "berth.yaml:9 spec.replicas.min:",
    },
    {
      name: "bad name",
      text: VALID.replace("name: gpt2", "name: GPT_2"),
      expected: "berth.yaml:4 metadata.name: must be lowercase",
    },
    {
      name: "wrong apiVersion",
      text: VALID.replace("v1alpha1", "v9"),
      expected: "berth.yaml:1 apiVersion: must be berth.dev/v1alpha1",
    },
    {
      name: "wrong kind",
      text: VALID.replace("kind: ModelDeployment", "kind: Deployment"),
      expected: "berth.yaml:2 kind: must be ModelDeployment",
    },
    {
      name: "bad duration",
      text: `${VALID}  autoscaling:\n    scaleDownDelay: soon\n`,
      expected: "berth.yaml:12 spec.autoscaling.scaleDownDelay: must be a duration",
    },
    {
      name: "bad model source",
      text: VALID.replace("tiny://tiny", "ftp://host/model.gguf"),
      expected: 'berth.yaml:7 spec.model.source: ftp://host/model.gguf: unknown scheme "ftp://"',
    },
    {
      name: "negative parallel",
      text: `${VALID}  engine:\n    parallel: -1\n`,
      expected: "berth.yaml:12 spec.engine.parallel:",
    },
    {
      name: "bad memory quantity",
      text: `${VALID}  resources:\n    memory: 4GB\n`,
      expected: "berth.yaml:12 spec.resources.memory: must be a memory quantity",
    },
    {
      name: "api key written inline",
      text: `${VALID}  auth:\n    apiKeysFrom: sk-secret\n`,
      expected: "berth.yaml:12 spec.auth.apiKeysFrom: must be env:VARIABLE or file:PATH",
    },
    {
      name: "bad ingress host",
      text: `${VALID}  ingress:\n    host: "Not A Host"\n`,
      expected: "berth.yaml:12 spec.ingress.host: must be a DNS host name",
    },
    { name: "broken YAML", text: `${VALID}  service: [\n`, expected: "berth.yaml:12" },
    {
      name: "duplicate model names",
      text: `${VALID}---\n${VALID}`,
      expected: "berth.yaml:15 metadata.name: duplicate name",
    },
    { name: "empty file", text: "", expected: "berth.yaml: no ModelDeployment documents" },
  ];

  it.each(broken)("rejects $name with line and field", ({ text, expected }) => {
    const problems = problemsOf(text);
    expect(
      problems.some((line) => line.startsWith(expected)),
      problems.join("\n"),
    ).toBe(true);
  });
});
