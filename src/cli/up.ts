// `berth up -f FILE`: runs the spec's models on this machine (replicas, gateway, autoscaler) until
// SIGINT/SIGTERM or `berth down`, then drains and stops every replica and exits.
import type { Command } from "commander";
import { SpecError } from "../spec/index.js";
import { stateDir } from "../util/home.js";
import { createLogger } from "../util/log.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";

// A shutdown that takes longer than this (a replica that ignores SIGTERM and SIGKILL?) is cut short.
const SHUTDOWN_DEADLINE_MS = 120_000;

export function register(program: Command): void {
  program
    .command("up")
    .description("run the spec's models locally: replicas, gateway, autoscaler, rolling updates")
    .requiredOption("-f, --file <path>", "spec file (YAML, one or more ModelDeployment documents)")
    .option("--port <port>", "gateway port (0 picks a free one)", "8080")
    .option("--host <host>", "gateway address (auth is on by default beyond loopback)", "127.0.0.1")
    .option("--watch", "apply the spec file again when it changes (rolling update)")
    .action(async (options: { file: string; port: string; host: string; watch?: boolean }) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new CliError(`--port must be 0..65535, not "${options.port}"`, EXIT_USAGE);
      }
      const [{ startUp, UpError }, { ModelSourceError }, { GatewayConfigError }] = await Promise.all([
        import("./up-session.js"),
        import("../control/model-source.js"),
        import("../gateway/errors.js"),
      ]);
      const logger = createLogger({ name: "berth-up" }, process.stderr);
      let handle: Awaited<ReturnType<typeof startUp>>;
      try {
        handle = await startUp({
          specFile: options.file,
          host: options.host,
          port,
          watch: options.watch === true,
          stateDir: stateDir(),
          logger,
        });
      } catch (error) {
        if (
          error instanceof SpecError ||
          error instanceof ModelSourceError ||
          error instanceof GatewayConfigError
        ) {
          throw new CliError(error.message, EXIT_USAGE);
        }
        if (error instanceof UpError) throw new CliError(error.message, EXIT_FAILURE);
        if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
          throw new CliError(
            `${options.host}:${port} is already in use (--port picks another)`,
            EXIT_FAILURE,
          );
        }
        throw error;
      }
      process.stdout.write(`berth up: gateway on ${handle.gatewayUrl}\n`);
      announceReadiness(handle.controller);

      let signals = 0;
      const onSignal = (signal: NodeJS.Signals): void => {
        signals += 1;
        if (signals > 1) {
          // The runtime's exit hook SIGKILLs every replica's process group.
          process.stderr.write(`berth up: ${signal} again: stopping replicas by force\n`);
          process.exit(130);
        }
        process.stdout.write(`berth up: ${signal}: draining and stopping every replica\n`);
        setTimeout(() => {
          process.stderr.write("berth up: shutdown took too long: stopping replicas by force\n");
          process.exit(EXIT_FAILURE);
        }, SHUTDOWN_DEADLINE_MS).unref();
        void handle.shutdown(signal);
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      await handle.closed;
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.stdout.write("berth up: stopped\n");
    });
}

/** Prints one line per model the first time all its desired replicas are ready. */
function announceReadiness(controller: {
  onChange(listener: () => void): () => void;
  status(): { models: Array<{ servedName: string; desired: number; ready: number }> };
}): void {
  const announced = new Set<string>();
  const check = (): void => {
    for (const model of controller.status().models) {
      if (!announced.has(model.servedName) && model.desired > 0 && model.ready >= model.desired) {
        announced.add(model.servedName);
        process.stdout.write(`berth up: ${model.servedName} ready (${model.ready} replicas)\n`);
      }
    }
  };
  controller.onChange(check);
}
