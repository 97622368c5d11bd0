// The `berth` command line: builds the commander program from one module per command.
// Commands stay thin: parse, call, print. Errors go to stderr with a non-zero exit code.
import { Command, CommanderError } from "commander";
import { CliError } from "./errors.js";

type Registrar = (program: Command) => void;

// Each command module exports `register(program)`. Loaded eagerly: startup cost is small
// and heavy dependencies (node-llama-cpp, the Kubernetes client) are imported inside actions.
const COMMAND_MODULES: Array<() => Promise<{ register: Registrar }>> = [
  // commands: one line each
  () => import("./validate.js"),
  () => import("./render.js"),
  () => import("./deploy.js"),
  () => import("./delete.js"),
  () => import("./k8s.js"),
  () => import("./model.js"),
  () => import("./build.js"),
  () => import("./serve.js"),
  () => import("./up.js"),
  () => import("./status.js"),
  () => import("./events.js"),
  () => import("./logs.js"),
  () => import("./scale.js"),
  () => import("./apply.js"),
  () => import("./down.js"),
];

export async function buildProgram(): Promise<Command> {
  const program = new Command("berth")
    .description("Deploy and run large language models, locally or on Kubernetes")
    .version(process.env.npm_package_version ?? "0.1.0")
    .showHelpAfterError()
    .exitOverride();
  for (const load of COMMAND_MODULES) (await load()).register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram();
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
    process.stderr.write(
      `berth: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  }
}
