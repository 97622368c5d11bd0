// Loads ModelDeployment YAML (one or several documents per file), validates it with zod at the
// edge, applies defaults, and reports every problem with its file, line and field path.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseAllDocuments,
  visit,
} from "yaml";
import type { z } from "zod";
import { SpecError, type SpecProblem } from "./errors.js";
import { issueMessage, valueAt } from "./messages.js";
import { type ModelDeployment, modelDeploymentSchema } from "./schema.js";

export interface SpecFile {
  /** The path as given (used in messages and to resolve relative model paths). */
  path: string;
  deployments: ModelDeployment[];
}

export async function loadSpecFile(path: string): Promise<SpecFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "is a directory, not a spec file"
          : `cannot read it (${code ?? (error instanceof Error ? error.message : String(error))})`;
    throw new SpecError("BERTH_SPEC_NOT_FOUND", [{ file: path, path: "", message: reason }]);
  }
  return { path, deployments: parseSpecText(text, path) };
}

/** Parses and validates spec text; `file` only labels messages. Throws SpecError listing every problem. */
export function parseSpecText(text: string, file = "berth.yaml"): ModelDeployment[] {
  const label = file.includes("/") ? file : basename(file);
  try {
    return parseSpecDocuments(text, label);
  } catch (error) {
    if (error instanceof SpecError) throw error;
    // The YAML library's own limits (nesting depth, alias count) surface as plain errors: still a
    // located problem in the spec, never a crash.
    const message = error instanceof Error ? error.message : String(error);
    throw new SpecError("BERTH_SPEC_YAML", [
      { file: label, line: 1, path: "", message: `cannot read this YAML: ${firstLine(message)}` },
    ]);
  }
}

/** The most aliases a document may expand (the YAML library's guard against alias bombs). */
const MAX_ALIAS_COUNT = 100;

function parseSpecDocuments(text: string, label: string): ModelDeployment[] {
  const lineCounter = new LineCounter();
  // Merge keys (`<<: *base`) as Kubernetes tooling reads them; duplicate keys are errors.
  const documents = parseAllDocuments(text, {
    lineCounter,
    prettyErrors: false,
    // Odd constructs (a map as a key) become problems below, not Node process warnings on stderr.
    logLevel: "error",
    merge: true,
    uniqueKeys: true,
  });
  const lineOf = (offset: number | undefined) =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line;

  if (!Array.isArray(documents)) {
    return [];
  }
  const problems: SpecProblem[] = [];
  const deployments: ModelDeployment[] = [];
  let syntaxProblem = false;
  for (const document of documents) {
    if (document.errors.length > 0) {
      syntaxProblem = true;
      for (const yamlError of document.errors) {
        problems.push({
          file: label,
          line: lineOf(yamlError.pos[0]),
          path: pathAtOffset(document, yamlError.pos[0]),
          message: firstLine(yamlError.message),
        });
      }
      continue;
    }
    const referenceProblems = checkAnchorsAndAliases(document, label, lineOf);
    if (referenceProblems.length > 0) {
      syntaxProblem = true;
      problems.push(...referenceProblems);
      continue;
    }
    if (document.contents === null) continue; // an empty document between separators
    let input: unknown;
    try {
      input = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (error) {
      syntaxProblem = true;
      const message = error instanceof Error ? error.message : String(error);
      problems.push({
        file: label,
        line: lineOf(document.contents.range?.[0]),
        path: "",
        message: firstLine(message),
      });
      continue;
    }
    const result = modelDeploymentSchema.safeParse(input);
    if (!result.success) {
      for (const issue of result.error.issues)
        problems.push(problemFromIssue(issue, document, input, label, lineOf));
      continue;
    }
    deployments.push(result.data);
  }
  if (problems.length === 0) {
    const seen = new Map<string, number>();
    deployments.forEach((deployment, index) => {
      const name = deployment.metadata.name;
      if (seen.has(name)) {
        const node = documents[index]?.getIn(["metadata", "name"], true) as Node | undefined;
        problems.push({
          file: label,
          line: lineOf(node?.range?.[0]),
          path: "metadata.name",
          message: `duplicate name "${name}" (documents must name different models)`,
        });
      }
      seen.set(name, index);
    });
  }
  if (problems.length > 0) {
    throw new SpecError(syntaxProblem ? "BERTH_SPEC_YAML" : "BERTH_SPEC_INVALID", fewProblems(problems));
  }
  if (deployments.length === 0) {
    throw new SpecError("BERTH_SPEC_EMPTY", [
      { file: label, path: "", message: "no ModelDeployment documents" },
    ]);
  }
  return deployments;
}

/**
 * Aliases must name an anchor set earlier in the same document, and an anchor name is set once
 * (YAML lets a later anchor shadow an earlier one, which makes a spec say something it does not
 * seem to say).
 */
function checkAnchorsAndAliases(
  document: Document.Parsed,
  file: string,
  lineOf: (offset: number | undefined) => number | undefined,
): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const anchors = new Map<string, number | undefined>();
  visit(document, (_key, node, ancestors) => {
    if (isPair(node) && isMergeKey(node.key) && !isMergeSource(document, node.value)) {
      problems.push({
        file,
        line: lineOf((node.key as Node).range?.[0]),
        path: pathOfAncestors([...ancestors, node], node.value),
        message: "a merge key (<<) needs a map, an alias of a map, or a list of those",
      });
      return visit.SKIP;
    }
    if (isAlias(node)) {
      if (!anchors.has(node.source)) {
        problems.push({
          file,
          line: lineOf(node.range?.[0]),
          path: pathOfAncestors(ancestors, node),
          message: `alias *${node.source} names no anchor &${node.source} defined before it in this document`,
        });
      }
      return;
    }
    if ((isScalar(node) || isMap(node) || isSeq(node)) && node.anchor) {
      const line = lineOf(node.range?.[0]);
      const first = anchors.get(node.anchor);
      if (anchors.has(node.anchor)) {
        problems.push({
          file,
          line,
          path: pathOfAncestors(ancestors, node),
          message: `anchor &${node.anchor} is already defined${first === undefined ? "" : ` on line ${first}`}; use a distinct name`,
        });
      } else {
        anchors.set(node.anchor, line);
      }
    }
  });
  return problems;
}

/** The dotted field path of a node from the ancestors `visit` passes (pairs and collections). */
function pathOfAncestors(ancestors: readonly unknown[], node: unknown): string {
  const segments: string[] = [];
  const chain = [...ancestors, node];
  for (let index = 0; index < chain.length; index++) {
    const item = chain[index];
    const next = chain[index + 1];
    if (isPair(item) && next === item.value) {
      segments.push(keyText(item.key));
    } else if (isSeq(item) && next !== undefined) {
      const position = item.items.indexOf(next as never);
      if (position >= 0) segments.push(String(position));
    }
  }
  return segments.join(".");
}

function isMergeKey(key: unknown): boolean {
  if (!isScalar(key)) return false;
  const value = key.value;
  return value === "<<" || (typeof value === "symbol" && value.description === "<<");
}

function isMergeSource(document: Document.Parsed, value: unknown): boolean {
  const isMapSource = (item: unknown): boolean =>
    isMap(item) || (isAlias(item) && isMap(item.resolve(document)));
  return isMapSource(value) || (isSeq(value) && value.items.every(isMapSource));
}

function keyText(key: unknown): string {
  if (isScalar(key)) {
    return pathSegment(typeof key.value === "symbol" ? (key.value.description ?? "?") : String(key.value));
  }
  if (isAlias(key)) return `*${key.source}`;
  return "?";
}

/** A key as it appears in a dotted path: plain words as they are, anything else quoted and short. */
function pathSegment(key: string | number): string {
  if (typeof key === "number" || /^[\w<-]+$/.test(key)) return String(key);
  return JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key);
}

function joinPath(path: ReadonlyArray<string | number>): string {
  return path.map(pathSegment).join(".");
}

/** The dotted path of the deepest node whose source range contains `offset` ("" for the root). */
function pathAtOffset(document: Document.Parsed, offset: number | undefined): string {
  if (offset === undefined) return "";
  const segments: string[] = [];
  let node: unknown = document.contents;
  const contains = (candidate: unknown): boolean => {
    const range = (candidate as Node | null)?.range;
    return Array.isArray(range) && offset >= range[0] && offset < range[2];
  };
  for (let depth = 0; depth < 1000; depth++) {
    if (isMap(node)) {
      const pair = node.items.find((item) => contains(item.key) || contains(item.value));
      if (!pair) break;
      segments.push(keyText(pair.key));
      if (!contains(pair.value)) break;
      node = pair.value;
    } else if (isSeq(node)) {
      const position = node.items.findIndex((item) => contains(item));
      if (position < 0) break;
      segments.push(String(position));
      node = node.items[position];
    } else {
      break;
    }
  }
  return segments.join(".");
}

const MAX_PROBLEMS = 20;

/** Problems without repeats, at most MAX_PROBLEMS of them (a broken file can yield thousands). */
function fewProblems(problems: SpecProblem[]): SpecProblem[] {
  const seen = new Set<string>();
  const unique = problems.filter((problem) => {
    const key = `${problem.line}|${problem.path}|${problem.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  if (unique.length <= MAX_PROBLEMS) return unique;
  const rest = unique.length - MAX_PROBLEMS;
  const last = unique[MAX_PROBLEMS - 1]!;
  return [
    ...unique.slice(0, MAX_PROBLEMS),
    {
      file: last.file,
      line: last.line,
      path: "",
      message: `and ${rest} more problem${rest === 1 ? "" : "s"}`,
    },
  ];
}

function firstLine(message: string): string {
  if (message.includes("Maximum call stack size exceeded")) return "the YAML is nested too deeply";
  const line = message.split("\n")[0] ?? "";
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function problemFromIssue(
  issue: z.core.$ZodIssue,
  document: Document.Parsed,
  input: unknown,
  file: string,
  lineOf: (offset: number | undefined) => number | undefined,
): SpecProblem {
  const path = issue.path.map((segment) => (typeof segment === "symbol" ? String(segment) : segment));
  if (issue.code === "unrecognized_keys") {
    const container = nodeAt(document, path);
    const key = issue.keys[0] ?? "";
    const pair = isMap(container)
      ? container.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === key)
      : undefined;
    const keyNode = pair && isScalar(pair.key) ? pair.key : container;
    const others = issue.keys.length > 1 ? ` (and ${issue.keys.slice(1).join(", ")})` : "";
    return {
      file,
      line: lineOf(keyNode?.range?.[0]),
      path: joinPath([...path, key]),
      message: `unknown field${others}`,
    };
  }
  const node = nodeAt(document, path);
  return {
    file,
    line: lineOf(node?.range?.[0]),
    path: joinPath(path),
    message: issueMessage(issue, valueAt(input, path)),
  };
}

/** The deepest YAML node along `path` (the parent when the field itself is missing). */
function nodeAt(document: Document.Parsed, path: Array<string | number>): Node | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = document.getIn(path.slice(0, depth), true) as Node | undefined;
    if (node && typeof node === "object" && "range" in node) return node;
  }
  return document.contents ?? undefined;
}

/**
 * The line of `path` in each deployment document of a spec that parsed (same order as the
 * deployments parseSpecText returns), so later checks (the model file) can still say FILE:LINE.
 */
export function fieldLines(text: string, path: Array<string | number>): Array<number | undefined> {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, merge: true });
  if (!Array.isArray(documents)) return [];
  return documents
    .filter((document) => document.contents !== null)
    .map((document) => {
      const node = nodeAt(document, path);
      const offset = node?.range?.[0];
      return offset === undefined ? undefined : lineCounter.linePos(offset).line;
    });
}
