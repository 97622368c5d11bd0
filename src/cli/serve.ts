// `berth serve --model FILE`: one model-server process (what a replica or container runs).
// Prints JSON log lines; the line {"msg":"ready","url":...} says where it listens once the model is loaded.

import { type Command, Option } from "commander";
import { CliError, EXIT_USAGE } from "./errors.js";

interface ServeFlags {
  model: string;
  host: string;
  port: string;
  parallel: string;
  ctx?: string;
  threads?: string;
  modelId?: string;
  name?: string;
  maxQueue?: string;
  gracePeriod: string;
  requestTimeout: string;
  bodyLimit: string;
  logPrompts?: boolean;
  prefixReuse: boolean;
  logFormat: string;
}

export function register(program: Command): void {
  program
    .command("serve")
    .description(
      "serve a GGUF model over HTTP: the seed's POST /generate and the OpenAI API, with health, readiness and metrics",
    )
    .requiredOption(
      "--model <source>",
      "GGUF model: a path or file://, hf://ORG/REPO[/FILE][:QUANT][@REV], https://URL, s3://BUCKET/KEY (pulled into the cache first)",
    )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on (0: any free port, logged in the ready line)", "9000")
    .option("--parallel <n>", "sequences decoded together (continuous batching slots)", "8")
    .option(
      "--ctx <tokens>",
      "context per sequence: prompt + max_tokens of one request (default min(model's, 1024))",
    )
    .option(
      "--threads <n>",
      "CPU threads for decoding (default: the CPUs this process may use: cores, affinity, cgroup quota)",
    )
    .option(
      "--model-id <id>",
      "model name clients send and /v1/models lists (default: the model's file name without .gguf)",
    )
    .option("--name <id>", "the same as --model-id")
    .option("--max-queue <n>", "requests that may wait for a slot; beyond them 429 (default 4 x parallel)")
    .option("--grace-period <duration>", "on SIGTERM, how long in-flight requests may finish", "30s")
    .option(
      "--request-timeout <duration>",
      "default per-request deadline (504 beyond); x-berth-timeout-ms overrides",
      "120s",
    )
    .option("--body-limit <size>", "largest request body (413 beyond), bytes or e.g. 1Mi", "1Mi")
    .option(
      "--log-prompts",
      "include prompts and completions in the request log lines (off: they are user data)",
    )
    // For bench:multiturn's baseline only (hence hidden): the same server without prefix reuse.
    .addOption(
      new Option("--no-prefix-reuse", "evaluate every prompt from scratch (benchmarks only)").hideHelp(),
    )
    .option(
      "--log-format <format>",
      "auto (human lines on a terminal, JSON lines otherwise), pretty, json or ecs (Elastic Common Schema); default $BERTH_LOG_FORMAT or auto",
      process.env.BERTH_LOG_FORMAT ?? "auto",
    )
    .action(async (flags: ServeFlags) => {
      // Cold-start phases (node boot, CLI, model check, imports, engine, model load, ready), logged
      // with the ready line; bench:serve reads them.
      const { StartupClock } = await import("../util/startup.js");
      const startup = new StartupClock();
      startup.mark("cli");
      const { LOG_FORMATS, resolveLogFormat } = await import("../util/log.js");
      const logFormat = resolveLogFormat(flags.logFormat, process.stdout.isTTY === true);
      if (logFormat === undefined)
        throw new CliError(
          `--log-format must be one of ${LOG_FORMATS.join(", ")}, not "${flags.logFormat}"`,
          EXIT_USAGE,
        );
      const { parseServeOptions } = await import("../server/serve-options.js");
      const { name, logFormat: _logFormat, ...rest } = flags;
      if (name !== undefined && flags.modelId !== undefined && name !== flags.modelId) {
        throw new CliError("--name and --model-id disagree; give one of them", EXIT_USAGE);
      }
      const parsed = parseServeOptions({ ...rest, modelId: flags.modelId ?? name });
      if (!parsed.ok) throw new CliError(parsed.message, EXIT_USAGE);
      // The source through the model store (a download with progress for hf://, https://, s3://),
      // which model-checks the file before anything loads it: a broken model is one line and exit 2,
      // never a raw library error from the engine. The relaunched child finds it in the cache.
      const { pullForCli } = await import("./pull-progress.js");
      const pulled = await pullForCli(flags.model);
      startup.mark("model-check");
      const settings = {
        ...parsed.settings,
        modelPath: pulled.path,
        modelId: parsed.settings.modelId ?? pulled.modelId,
      };

      // libuv's thread pool must be sized before Node starts (src/engine/process.ts says why and
      // what it is worth). bin/berth.js sets it; without UV_THREADPOOL_SIZE in our environment
      // (started some other way), run again as a child that has it, forwarding signals, and exit
      // with its code.
      const { hasEngineProcessEnv, relaunchWithEngineEnvironment } = await import("../engine/process.js");
      if (!hasEngineProcessEnv()) {
        process.exitCode = await relaunchWithEngineEnvironment(startup.carry());
        return;
      }
      // The engine's import and binary load (it forks a process to test the binary) are the longest
      // phases: start them now, beside the HTTP app's imports and listen. Only after the model check,
      // so that a bad model exits at once.
      const { preloadLlamaEngine } = await import("../engine/llamacpp.js");
      preloadLlamaEngine(false, (phase) => startup.mark(phase));

      const { createLogger } = await import("../util/log.js");
      const { startServer } = await import("../server/serve.js");
      startup.mark("server-imports");
      const logger = createLogger({ base: { pid: process.pid, component: "server" } }, undefined, logFormat);
      const server = await startServer({
        engine: {
          modelPath: settings.modelPath,
          parallel: settings.parallel,
          ...(settings.contextPerSequence === undefined
            ? {}
            : { contextPerSequence: settings.contextPerSequence }),
          ...(settings.threads === undefined ? {} : { threads: settings.threads }),
          ...(settings.modelId === undefined ? {} : { modelId: settings.modelId }),
          ...(settings.maxQueue === undefined ? {} : { maxQueue: settings.maxQueue }),
          ...(settings.prefixReuse ? {} : { prefixReuse: false }),
        },
        host: settings.host,
        port: settings.port,
        gracePeriodMs: settings.gracePeriodMs,
        requestTimeoutMs: settings.requestTimeoutMs,
        bodyLimitBytes: settings.bodyLimitBytes,
        logPrompts: settings.logPrompts,
        logger,
        startup,
      });

      let signalled = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (signalled) {
          // A second signal: stop waiting for in-flight requests.
          logger.warn({ signal }, "second signal; cancelling in-flight requests");
          server.cancelInFlight();
          return;
        }
        signalled = true;
        logger.info({ signal }, "shutting down");
        server.shutdown().then(
          () => process.exit(0),
          (error: unknown) => {
            logger.error({ err: error }, "shutdown failed");
            process.exit(1);
          },
        );
      };
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);

      try {
        await server.ready;
      } catch (error) {
        logger.error({ err: error }, "the model could not be loaded");
        await server.app.close();
        throw new CliError(`cannot load ${settings.modelPath}: ${(error as Error).message}`);
      }
    });
}
