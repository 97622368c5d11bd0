// Errors a command reports to the user: a one-line message on stderr and an exit code,
// never a stack trace. Other boundaries' errors (spec, models, Kubernetes) are wrapped into this.
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** Exit codes: 1 a failure, 2 bad usage or invalid input. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
