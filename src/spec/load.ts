// Loads ModelDeployment YAML (one or several documents per file), validates it with zod at the
// edge, applies defaults, and reports every problem with its file, line and field path.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { type Document, isMap, isPair, isScalar, LineCounter, type Node, parseAllDocuments } from "yaml";
import type { z } from "zod";
import { SpecError, type SpecProblem } from "./errors.js";
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
    const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(error);
    throw new SpecError("BERTH_SPEC_NOT_FOUND", [{ file: path, path: "", message: reason }]);
  }
  return { path, deployments: parseSpecText(text, path) };
}

/** Parses and validates spec text; `file` only labels messages. Throws SpecError listing every problem. */
export function parseSpecText(text: string, file = "berth.yaml"): ModelDeployment[] {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const label = file.includes("/") ? file : basename(file);
  const lineOf = (offset: number | undefined) =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line;

  if (!Array.isArray(documents)) {
    return [];
  }
  const problems: SpecProblem[] = [];
  const deployments: ModelDeployment[] = [];
  for (const document of documents) {
    if (document.errors.length > 0) {
      for (const yamlError of document.errors) {
        problems.push({ file: label, line: lineOf(yamlError.pos[0]), path: "", message: yamlError.message });
      }
      continue;
    }
    if (document.contents === null) continue; // an empty document between separators
    const result = modelDeploymentSchema.safeParse(document.toJS());
    if (!result.success) {
      for (const issue of result.error.issues)
        problems.push(problemFromIssue(issue, document, label, lineOf));
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
    throw new SpecError(
      problems.some((p) => p.path === "" && p.line) ? "BERTH_SPEC_YAML" : "BERTH_SPEC_INVALID",
      problems,
    );
  }
  if (deployments.length === 0) {
    throw new SpecError("BERTH_SPEC_EMPTY", [
      { file: label, path: "", message: "no ModelDeployment documents" },
    ]);
  }
  return deployments;
}

function problemFromIssue(
  issue: z.core.$ZodIssue,
  document: Document.Parsed,
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
      path: [...path, key].join("."),
      message: `unknown field${others}`,
    };
  }
  const node = nodeAt(document, path);
  const missing = issue.code === "invalid_type" && issue.input === undefined;
  return {
    file,
    line: lineOf(node?.range?.[0]),
    path: path.join("."),
    message: missing ? "is required" : issue.message,
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
