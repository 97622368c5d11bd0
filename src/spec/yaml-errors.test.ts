// Every YAML and schema problem is one located line `FILE:LINE path: message`: aliases with no
// anchor, anchors set twice, merge keys, duplicate keys, alias bombs, deep nesting, and values of
// the wrong type said as "expected a number, got the string \"abc\"" (not "is required").
import { describe, expect, it } from "vitest";
import { SpecError } from "./errors.js";
import { parseSpecText } from "./load.js";

const HEAD = "apiVersion: berth.dev/v1alpha1\nkind: ModelDeployment\nmetadata:\n  name: m\n";

function problemsOf(text: string): { code: string; lines: string[] } {
  try {
    parseSpecText(text, "berth.yaml");
  } catch (error) {
    expect(error).toBeInstanceOf(SpecError);
    return { code: (error as SpecError).code, lines: (error as SpecError).message.split("\n") };
  }
  throw new Error("expected the spec to be rejected");
}

describe("YAML problems are located", () => {
  it("an alias with no anchor (was: a ReferenceError stack trace)", () => {
    const { code, lines } = problemsOf(`${HEAD}spec:\n  model:\n    source: *nope\n`);
    expect(code).toBe("BERTH_SPEC_YAML");
    expect(lines).toEqual([
      "berth.yaml:7 spec.model.source: alias *nope names no anchor &nope defined before it in this document",
    ]);
  });

  it("an alias to an anchor of another document", () => {
    const first = `${HEAD}spec: &shared\n  model: { source: tiny://tiny }\n`;
    const second = `${HEAD.replace("name: m", "name: n")}spec: *shared\n`;
    const { lines } = problemsOf(`${first}---\n${second}`);
    expect(lines).toEqual([
      "berth.yaml:12 spec: alias *shared names no anchor &shared defined before it in this document",
    ]);
  });

  it("an anchor set twice", () => {
    const text = `${HEAD}spec:\n  model: { source: &a tiny://tiny }\n  engine: { parallel: &a 4 }\n`;
    expect(problemsOf(text).lines).toEqual([
      "berth.yaml:7 spec.engine.parallel: anchor &a is already defined on line 6; use a distinct name",
    ]);
  });

  it("anchors, aliases and merge keys that are right work", () => {
    const text =
      `${HEAD}spec:\n  model: { source: tiny://tiny }\n  replicas: &r { min: 1, max: 3 }\n` +
      `  autoscaling:\n    <<: { targetInFlight: 4 }\n    scaleDownDelay: 10s\n`;
    const [deployment] = parseSpecText(text);
    expect(deployment?.spec.replicas.max).toBe(3);
    expect(deployment?.spec.autoscaling.targetInFlight).toBe(4);
    expect(deployment?.spec.autoscaling.scaleDownDelay).toBe(10_000);
  });

  it("a merge key of something other than a map", () => {
    const text = `${HEAD}spec:\n  model: { source: tiny://tiny }\n  engine:\n    <<: 5\n`;
    expect(problemsOf(text).lines).toEqual([
      "berth.yaml:8 spec.engine.<<: a merge key (<<) needs a map, an alias of a map, or a list of those",
    ]);
  });

  it("a duplicate key", () => {
    const text = `${HEAD}spec:\n  model:\n    source: tiny://tiny\n    contextSize: 128\n    contextSize: 256\n`;
    const { code, lines } = problemsOf(text);
    expect(code).toBe("BERTH_SPEC_YAML");
    expect(lines).toEqual(["berth.yaml:9 spec.model.contextSize: Map keys must be unique"]);
  });

  it("an alias bomb and runaway nesting are refused, not expanded", () => {
    const bomb =
      "a: &a [1,2,3,4,5,6,7,8,9]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n" +
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";
    expect(problemsOf(bomb).lines[0]).toMatch(/^berth\.yaml:1: .*alias count/);
    const deep = problemsOf("[".repeat(20_000));
    expect(deep.lines.length).toBeLessThanOrEqual(21);
    expect(deep.lines[0]).toBe("berth.yaml:1: the YAML is nested too deeply");
  });
});

describe("wrong types say what was expected and what was found", () => {
  const spec = (model: string, replicas = "{ min: 1, max: 2 }") =>
    `${HEAD}spec:\n  model: { source: tiny://tiny, ${model} }\n  replicas: ${replicas}\n`;

  it.each([
    ['contextSize: "abc"', 'expected a number, got the string "abc"'],
    ["contextSize: 1.5", "expected an integer, got the number 1.5"],
    ["contextSize: [1]", "expected a number, got a list"],
    ["contextSize: ~", "expected a number, got an empty value"],
    ["contextSize: true", "expected a number, got the boolean true"],
    ["contextSize: 10", "must be at least 64 (got the number 10)"],
    ["contextSize: 99999999", "must be at most 1048576 (got the number 99999999)"],
  ])("%s", (field, message) => {
    expect(problemsOf(spec(field)).lines).toEqual([`berth.yaml:6 spec.model.contextSize: ${message}`]);
  });

  it('max: two (was: "is required")', () => {
    expect(problemsOf(spec("contextSize: 128", "{ min: 1, max: two }")).lines).toEqual([
      'berth.yaml:7 spec.replicas.max: expected a number, got the string "two"',
    ]);
  });

  it("enums, literals, unions, formats and a missing field", () => {
    const text =
      `${HEAD}spec:\n  model: { contextSize: 128 }\n  engine: { kind: vllm }\n  service: { type: Ingress }\n` +
      `  resources: { cpu: [2] }\n  autoscaling: { scaleDownDelay: 5 minutes }\n`;
    expect(problemsOf(text).lines.sort()).toEqual(
      [
        "berth.yaml:6 spec.model.source: is required",
        'berth.yaml:7 spec.engine.kind: must be "llamacpp" (got the string "vllm")',
        'berth.yaml:8 spec.service.type: must be one of "ClusterIP", "NodePort", "LoadBalancer" (got the string "Ingress")',
        "berth.yaml:9 spec.resources.cpu: expected a string or a number, got a list",
        'berth.yaml:10 spec.autoscaling.scaleDownDelay: must be a duration like 500ms, 30s, 10m or 1h (got the string "5 minutes")',
      ].sort(),
    );
  });

  it("a document that is not a map", () => {
    expect(problemsOf("just words").lines).toEqual([
      'berth.yaml:1: expected a map, got the string "just words"',
    ]);
  });
});
