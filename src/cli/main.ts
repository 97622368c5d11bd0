// The `berth` command line: builds the commander program from one module per command.
// Commands stay thin: parse, call, print. Errors go to stderr with a non-zero exit code.
import { Command, CommanderError } from "commander";
import { isModelInputFailure } from "../models/errors.js";
import { CliError } from "./errors.js";

type Registrar = (program: Command) => void;

// Each command module exports `register(program)`; heavy dependencies (node-llama-cpp, the
// Kubernetes client) are imported inside actions. Keyed by command name so that a run loads only
// the module of the command it runs (startup is paid by every `berth` call, e.g. in a deploy loop);
// help, version and unknown commands load them all.
const COMMAND_MODULES: Record<string, () => Promise<{ register: Registrar }>> = {
  validate: () => import("./validate.js"),
  render: () => import("./render.js"),
  deploy: () => import("./deploy.js"),
  delete: () => import("./delete.js"),
  k8s: () => import("./k8s.js"),
  model: () => import("./model.js"),
  build: () => import("./build.js"),
  serve: () => import("./serve.js"),
  up: () => import("./up.js"),
  status: () => import("./status.js"),
  events: () => import("./events.js"),
  logs: () => import("./logs.js"),
  scale: () => import("./scale.js"),
  apply: () => import("./apply.js"),
  down: () => import("./down.js"),
  operator: () => import("./operator.js"),
  gateway: () => import("./gateway.js"),
  install: () => import("./install.js"),
  uninstall: () => import("./uninstall.js"),
};

export async function buildProgram(commandName?: string): Promise<Command> {
  const program = new Command("berth")
    .description("Deploy and run large language models, locally or on Kubernetes")
    .version(process.env.npm_package_version ?? "0.1.0")
    .showHelpAfterError()
    .exitOverride();
  const only = commandName === undefined ? undefined : COMMAND_MODULES[commandName];
  const loaders = only ? [only] : Object.values(COMMAND_MODULES);
  for (const load of loaders) (await load()).register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // What escapes every handler still ends the process as Node would (exit 1), in one line.
  const onFatal = (error: unknown): void => {
    process.stderr.write(`berth: ${describeUnexpected(error).message}\n`);
    process.exit(1);
  };
  process.on("uncaughtException", onFatal);
  process.on("unhandledRejection", onFatal);
  const program = await buildProgram(argv[2]);
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof CliError) {
      process.stderr.write(`berth: ${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    const report = describeUnexpected(error);
    process.stderr.write(`berth: ${report.message}\n`);
    process.exitCode = report.exitCode;
  }
}

/**
 * An error no command turned into a CliError: still one message and no stack trace (set
 * BERTH_DEBUG=1 for it). Errors of a boundary (spec, model, source) keep their words; bad input
 * exits 2.
 */
export function describeUnexpected(error: unknown): { message: string; exitCode: number } {
  const code = (error as { code?: unknown } | undefined)?.code;
  const text = error instanceof Error ? error.message : String(error);
  const debug = process.env.BERTH_DEBUG === "1" && error instanceof Error && error.stack;
  if (typeof code === "string" && code.startsWith("BERTH_")) {
    const badInput = code.startsWith("BERTH_SPEC_") || isModelInputFailure(code);
    return { message: debug ? error.stack! : text, exitCode: badInput ? 2 : 1 };
  }
  if (debug) return { message: error.stack!, exitCode: 1 };
  const name = error instanceof Error && error.name !== "Error" ? `${error.name}: ` : "";
  return {
    message: `${name}${text.split("\n")[0]} (an unexpected error; BERTH_DEBUG=1 shows where)`,
    exitCode: 1,
  };
}
