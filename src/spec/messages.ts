// Turns zod's issues into the words `berth validate` prints: what the field expects and what the
// spec actually holds ("expected a number, got the string \"abc\""), never "is required" for a
// value that is there. Pure functions; the schema's own messages are kept where it has them.
import type { z } from "zod";

/** The value at `path` in the parsed YAML (undefined when absent). */
export function valueAt(input: unknown, path: ReadonlyArray<string | number>): unknown {
  let value = input;
  for (const segment of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string | number, unknown>)[segment];
  }
  return value;
}

/** "the string \"abc\"", "the number 1.5", "a list", "a map", "an empty value". */
export function describeValue(value: unknown): string {
  if (value === null) return "an empty value";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "string": {
      const quoted = JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
      return `the string ${quoted}`;
    }
    case "number":
    case "bigint":
      return `the number ${value}`;
    case "boolean":
      return `the boolean ${value}`;
    case "object":
      return value instanceof Date ? `the date ${value.toISOString().slice(0, 10)}` : "a map";
    default:
      return String(value);
  }
}

const EXPECTED_NAMES: Record<string, string> = {
  number: "a number",
  int: "an integer",
  string: "a string",
  boolean: "true or false",
  object: "a map",
  record: "a map",
  map: "a map",
  array: "a list",
  tuple: "a list",
  bigint: "an integer",
  date: "a date",
  null: "nothing",
};

function expectedName(expected: string): string {
  return EXPECTED_NAMES[expected] ?? expected;
}

/** Zod's built-in messages start like this; anything else was written in the schema and is kept. */
const DEFAULT_MESSAGE = /^(Invalid|Too (small|big)|Expected|Required)/;

export function issueMessage(issue: z.core.$ZodIssue, value: unknown): string {
  if (issue.code === "invalid_type") {
    if (value === undefined) return "is required";
    if (issue.expected === "int" && typeof value === "number") {
      return `expected an integer, got ${describeValue(value)}`;
    }
    return `expected ${expectedName(issue.expected)}, got ${describeValue(value)}`;
  }
  if (issue.code === "invalid_union") {
    // When every branch wanted another type, name the types; otherwise the first branch's reason.
    const branchIssues = issue.errors.map((branch) => branch[0]).filter((first) => first !== undefined);
    if (
      branchIssues.length > 0 &&
      branchIssues.every((first) => first.code === "invalid_type" && first.path.length === 0)
    ) {
      const names = [
        ...new Set(branchIssues.map((first) => expectedName((first as { expected: string }).expected))),
      ];
      if (value === undefined) return "is required";
      return `expected ${names.join(" or ")}, got ${describeValue(value)}`;
    }
    const first = branchIssues[0];
    if (first) return issueMessage(first, valueAt(value, first.path as Array<string | number>));
  }
  const custom = !DEFAULT_MESSAGE.test(issue.message);
  const got = value === undefined || typeof value === "object" ? "" : ` (got ${describeValue(value)})`;
  // A schema's own words stand; a string it refused is worth quoting (cross-field rules on numbers
  // already name both sides).
  if (custom) return typeof value === "string" ? `${issue.message}${got}` : issue.message;
  switch (issue.code) {
    case "too_small":
      return `${boundWords(issue.origin, Number(issue.minimum), issue.inclusive !== false, "least")}${got}`;
    case "too_big":
      return `${boundWords(issue.origin, Number(issue.maximum), issue.inclusive !== false, "most")}${got}`;
    case "invalid_value": {
      const choices = issue.values.map((choice) => JSON.stringify(choice));
      const wanted = choices.length === 1 ? `must be ${choices[0]}` : `must be one of ${choices.join(", ")}`;
      return `${wanted}${got}`;
    }
    case "invalid_format":
      return `has the wrong format${got}`;
    case "not_multiple_of":
      return `must be a multiple of ${issue.divisor}${got}`;
    default:
      return `${issue.message}${got}`;
  }
}

function boundWords(origin: string, bound: number, inclusive: boolean, side: "least" | "most"): string {
  if (origin === "string") {
    if (side === "least" && bound === 1) return "must not be empty";
    return `must have at ${side} ${bound} characters`;
  }
  if (origin === "array" || origin === "set") return `must have at ${side} ${bound} items`;
  if (inclusive) return `must be at ${side} ${bound}`;
  return side === "least" ? `must be more than ${bound}` : `must be less than ${bound}`;
}
