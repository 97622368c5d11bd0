// `berth up -f FILE`: runs the spec's models on this machine (replicas, gateway, autoscaler) until
// SIGINT/SIGTERM or `berth down`, then drains and stops every replica and exits.

import { join } from "node:path";
import type { Command } from "commander";
import { SpecError } from "../spec/index.js";
import { berthHome, stateDir } from "../util/home.js";
import { createLogger, LOG_FORMATS, resolveLogFormat } from "../util/log.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";
import type { LiveSource } from "./up-live.js";
import type { PrometheusSetup } from "./up-prometheus.js";
import type { TerminalView } from "./up-view.js";

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
    .option(
      "--log-format <format>",
      "auto (a live view and human lines on a terminal, JSON lines otherwise), pretty, json or ecs (Elastic Common Schema)",
      "auto",
    )
    .option(
      "--prometheus",
      "write a scrape config and alert rules for this berth up to BERTH_HOME/prometheus (and start Prometheus when installed)",
    )
    .option("--prometheus-port <port>", "port of the Prometheus that --prometheus starts", "9090")
    .option("--scrape-interval <duration>", "how often that Prometheus scrapes (e.g. 5s)", "5s")
    .action(async (options: UpFlags) => {
      const port = parsePort("--port", options.port);
      const isTty = process.stdout.isTTY === true;
      const format = resolveLogFormat(options.logFormat, isTty);
      if (format === undefined)
        throw new CliError(
          `--log-format must be one of ${LOG_FORMATS.join(", ")}, not "${options.logFormat}"`,
          EXIT_USAGE,
        );
      const prometheusPort = parsePort("--prometheus-port", options.prometheusPort);
      if (!/^\d+(ms|s|m)$/.test(options.scrapeInterval))
        throw new CliError(
          `--scrape-interval must be a duration like 5s, not "${options.scrapeInterval}"`,
          EXIT_USAGE,
        );
      // The live view needs a terminal; human lines without one are still what --log-format pretty asks.
      const live = format === "pretty" && isTty;
      const [{ startUp, UpError }, { ModelSourceError }, { GatewayConfigError }] = await Promise.all([
        import("./up-session.js"),
        import("../control/model-source.js"),
        import("../gateway/errors.js"),
      ]);
      const logger = createLogger({ name: "berth-up" }, live ? process.stdout : process.stderr, format);
      // Replicas inherit BERTH_LOG_* (src/runtime/local.ts): with ecs, their log files are ECS too.
      if (format === "ecs") process.env.BERTH_LOG_FORMAT = "ecs";
      // Before anything else is printed: log lines from startup already go below the view.
      let stopping = false;
      let prometheus: PrometheusSetup | undefined;
      let view: TerminalView | undefined;
      let source: LiveSource | undefined;
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
        if (error instanceof UpError) {
          throw new CliError(error.message, error.badInput ? EXIT_USAGE : EXIT_FAILURE);
        }
        if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
          throw new CliError(
            `${options.host}:${port} is already in use (--port picks another)`,
            EXIT_FAILURE,
          );
        }
        throw error;
      }
      if (options.prometheus) {
        const { setUpPrometheus } = await import("./up-prometheus.js");
        const controller = handle.controller;
        prometheus = await setUpPrometheus({
          dir: join(berthHome(), "prometheus"),
          gatewayUrl: handle.gatewayUrl,
          scrapeInterval: options.scrapeInterval,
          listenAddress: `127.0.0.1:${prometheusPort}`,
          replicas: () =>
            controller
              .models()
              .flatMap((model) => controller.upstreams(model))
              .map((upstream) => ({ id: upstream.id, url: upstream.url })),
          onChange: (listener) => controller.onChange(listener),
          logger,
        });
      }
      if (live) {
        const [{ TerminalView }, { liveSource }] = await Promise.all([
          import("./up-view.js"),
          import("./up-live.js"),
        ]);
        source = liveSource({
          controller: handle.controller,
          metrics: handle.metrics,
          gatewayUrl: handle.gatewayUrl,
          prometheusUrl: () => prometheus?.url,
          stopping: () => stopping,
        });
        view = new TerminalView(process.stdout, () => (source as LiveSource).snapshot());
        view.start();
        logger.info(
          { url: handle.gatewayUrl },
          "gateway and dashboard listening; Ctrl-C stops every replica",
        );
        handle.controller.onChange(() => view?.redraw());
      } else {
        process.stdout.write(`berth up: gateway on ${handle.gatewayUrl}\n`);
      }
      if (prometheus) {
        const line = prometheus.url
          ? `prometheus on ${prometheus.url} (config ${prometheus.configFile})`
          : `prometheus config written to ${prometheus.configFile}; ${prometheus.notStarted ?? ""}`;
        if (live) logger.info(line);
        else process.stdout.write(`berth up: ${line}\n`);
      }
      announceReadiness(handle.controller, (text) =>
        live ? logger.info(text) : process.stdout.write(`berth up: ${text}\n`),
      );

      let signals = 0;
      const onSignal = (signal: NodeJS.Signals): void => {
        signals += 1;
        if (signals > 1) {
          // The runtime's exit hook SIGKILLs every replica's process group.
          process.stderr.write(`berth up: ${signal} again: stopping replicas by force\n`);
          process.exit(130);
        }
        stopping = true;
        view?.redraw();
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
      await prometheus?.close();
      source?.stop();
      view?.stop();
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.stdout.write("berth up: stopped\n");
    });
}

/** Says once per model when all its desired replicas are first ready. */
function announceReadiness(
  controller: {
    onChange(listener: () => void): () => void;
    status(): { models: Array<{ servedName: string; desired: number; ready: number }> };
  },
  say: (text: string) => void,
): void {
  const announced = new Set<string>();
  const check = (): void => {
    for (const model of controller.status().models) {
      if (!announced.has(model.servedName) && model.desired > 0 && model.ready >= model.desired) {
        announced.add(model.servedName);
        say(`${model.servedName} ready (${model.ready} replicas)`);
      }
    }
  };
  controller.onChange(check);
}

interface UpFlags {
  file: string;
  port: string;
  host: string;
  watch?: boolean;
  logFormat: string;
  prometheus?: boolean;
  prometheusPort: string;
  scrapeInterval: string;
}

function parsePort(flag: string, value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CliError(`${flag} must be 0..65535, not "${value}"`, EXIT_USAGE);
  return port;
}
