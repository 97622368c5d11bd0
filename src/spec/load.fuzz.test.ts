// Fuzzing the spec loader (fast-check): random YAML trees, mutations of the shipped examples and
// random YAML-ish text. The property: parseSpecText either returns valid deployments or throws a
// SpecError whose every problem is located (`FILE:LINE path: message`, one line each); never any
// other exception. FUZZ_RUNS / FUZZ_SEED: see test/support/fuzz.ts.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { fuzzParameters } from "../../test/support/fuzz.js";
import { SpecError } from "./errors.js";
import { parseSpecText } from "./load.js";

const EXAMPLES = ["examples/local/berth.yaml", "examples/seed-gpt2/berth.yaml"].map((path) =>
  readFileSync(path, "utf8"),
);

/** Throws (failing the property) unless the outcome is valid deployments or located problems. */
function expectValidOrLocated(text: string): void {
  let deployments: unknown[];
  try {
    deployments = parseSpecText(text, "fuzz.yaml");
  } catch (error) {
    if (!(error instanceof SpecError)) {
      throw new Error(`not a SpecError: ${error instanceof Error ? error.stack : String(error)}`);
    }
    expect(error.problems.length).toBeGreaterThan(0);
    for (const problem of error.problems) {
      if (error.code !== "BERTH_SPEC_EMPTY") expect(problem.line, JSON.stringify(problem)).toBeGreaterThan(0);
      expect(problem.message.length).toBeGreaterThan(0);
      expect(problem.message).not.toContain("\n");
      expect(problem.path).not.toContain("\n");
    }
    for (const line of error.message.split("\n")) expect(line).toMatch(/^fuzz\.yaml(:\d+)?( \S.*)?: \S/);
    return;
  }
  expect(deployments.length).toBeGreaterThan(0);
}

// Keys Berth knows (so random trees reach deep into the schema) and a few it does not.
const KEYS = [
  "apiVersion",
  "kind",
  "metadata",
  "name",
  "spec",
  "model",
  "source",
  "contextSize",
  "servedName",
  "engine",
  "parallel",
  "threads",
  "replicas",
  "min",
  "max",
  "initial",
  "autoscaling",
  "targetInFlight",
  "scaleDownDelay",
  "resources",
  "cpu",
  "memory",
  "service",
  "type",
  "port",
  "ingress",
  "host",
  "auth",
  "apiKeysFrom",
  "rateLimit",
  "routing",
  "strategy",
  "kubernetes",
  "labels",
  "<<",
  "x",
  "",
];

const scalar = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(
    "berth.dev/v1alpha1",
    "ModelDeployment",
    "tiny://tiny",
    "30s",
    "4Gi",
    "500m",
    "ClusterIP",
    "least-load",
    "env:KEYS",
  ),
);

const tree = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("node"), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...KEYS), tie("node"), { maxKeys: 6 }),
  ),
})).node;

/** A valid-looking spec with random subtrees grafted in at known places. */
const nearlyValidSpec = fc
  .record({
    graftAt: fc.constantFrom(
      "spec",
      "spec.model",
      "spec.replicas",
      "spec.autoscaling",
      "metadata",
      "spec.engine",
    ),
    key: fc.constantFrom(...KEYS),
    value: tree,
  })
  .map(({ graftAt, key, value }) => {
    const spec: Record<string, unknown> = {
      apiVersion: "berth.dev/v1alpha1",
      kind: "ModelDeployment",
      metadata: { name: "fuzz" },
      spec: { model: { source: "tiny://tiny" }, replicas: { min: 1, max: 2 }, autoscaling: {}, engine: {} },
    };
    let target = spec;
    for (const part of graftAt.split(".")) target = target[part] as Record<string, unknown>;
    target[key] = value;
    return spec;
  });

const YAML_TOKENS = [
  "a",
  "spec",
  "model",
  "source",
  ":",
  ": ",
  " ",
  "  ",
  "\n",
  "\n  ",
  "- ",
  "*a",
  "&a ",
  "*",
  "&",
  "<<: ",
  "{",
  "}",
  "[",
  "]",
  ",",
  "'",
  '"',
  "#",
  "|",
  ">",
  "!",
  "!!str ",
  "!!binary ",
  "%YAML 1.2\n",
  "@",
  "`",
  "\t",
  "---\n",
  "...\n",
  "? ",
  "1",
  "-1",
  "1e999",
  "0x1F",
  "~",
  "null",
  "true",
  "\u0000",
  "\uFEFF",
  "é",
  "\r\n",
];

type Mutation = { at: number; kind: "delete" | "insert" | "duplicate-line"; length: number; text: string };

function mutate(text: string, mutations: Mutation[]): string {
  let result = text;
  for (const mutation of mutations) {
    const at = mutation.at % (result.length + 1);
    if (mutation.kind === "delete") result = result.slice(0, at) + result.slice(at + mutation.length);
    else if (mutation.kind === "insert") result = result.slice(0, at) + mutation.text + result.slice(at);
    else {
      const lines = result.split("\n");
      const line = at % lines.length;
      lines.splice(line, 0, lines[line] ?? "");
      result = lines.join("\n");
    }
  }
  return result;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom("delete", "insert", "duplicate-line"),
  length: fc.integer({ min: 1, max: 20 }),
  text: fc.oneof(fc.constantFrom(...YAML_TOKENS), fc.string({ maxLength: 8 })),
});

describe("spec loader fuzz: never a crash, always a located error or a valid spec", () => {
  it("random YAML trees", () => {
    fc.assert(
      fc.property(tree, (value) => expectValidOrLocated(stringify(value))),
      fuzzParameters(200),
    );
  });

  it("specs with random subtrees grafted in, as YAML with anchors and merge keys", () => {
    fc.assert(
      fc.property(nearlyValidSpec, fc.boolean(), (spec, flow) => {
        expectValidOrLocated(
          stringify(spec, { aliasDuplicateObjects: true, collectionStyle: flow ? "flow" : "any" }),
        );
      }),
      fuzzParameters(200),
    );
  });

  it("mutations of the shipped examples", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...EXAMPLES),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (example, mutations) => expectValidOrLocated(mutate(example, mutations)),
      ),
      fuzzParameters(300),
    );
  });

  it("random YAML-ish text", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...YAML_TOKENS), { maxLength: 60 }), (tokens) =>
        expectValidOrLocated(tokens.join("")),
      ),
      fuzzParameters(300),
    );
  });
});
