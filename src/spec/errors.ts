// Errors of the spec boundary: every problem names the file, the line and the field path,
// so `berth validate` can print "berth.yaml:14 spec.replicas.max: must be ≥ spec.replicas.min (2)".

export type SpecErrorCode =
  | "BERTH_SPEC_INVALID"
  | "BERTH_SPEC_YAML"
  | "BERTH_SPEC_NOT_FOUND"
  | "BERTH_SPEC_EMPTY";

export interface SpecProblem {
  file: string;
  /** 1-based line, when known. */
  line?: number;
  /** Dotted field path ("spec.replicas.max"), "" for the document itself. */
  path: string;
  message: string;
}

export function formatProblem(problem: SpecProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`;
  return problem.path ? `${where} ${problem.path}: ${problem.message}` : `${where}: ${problem.message}`;
}

export class SpecError extends Error {
  constructor(
    readonly code: SpecErrorCode,
    readonly problems: SpecProblem[],
  ) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "SpecError";
  }
}
