// `berth up` assembled: spec → resolved model files → local runtime + controller → gateway on a
// port → admin socket for the day-two commands → optional file watch. shutdown() undoes it all.
// It lives beside the command, not in src/control: the controller must not know which runtime it drives.
import { type FSWatcher, watch } from "node:fs";
import { readFile, unlink } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Registry } from "prom-client";
import { AdminUnavailableError, adminCall } from "../control/admin-client.js";
import { type ApplyResultView, adminSocketPath, upStatusSchema } from "../control/admin-protocol.js";
import { AdminRequestError, startAdminServer } from "../control/admin-server.js";
import { Controller, type DeploymentToApply } from "../control/controller.js";
import { ModelSourceError, resolveModelSources } from "../control/model-source.js";
import { buildGateway, type Gateway } from "../gateway/app.js";
import { isModelInputFailure } from "../models/errors.js";
import { LocalRuntime } from "../runtime/local.js";
import { type ModelDeployment, parseSpecText, SpecError } from "../spec/index.js";
import type { Logger } from "../util/log.js";
import { createProgress, type ProgressRenderer } from "./progress.js";
import { upConsoleSource } from "./up-console.js";
import { registerControllerMetrics } from "./up-metrics.js";

export interface UpOptions {
  specFile: string;
  host: string;
  port: number;
  watch: boolean;
  stateDir: string;
  logger: Logger;
  /** Controller sync period (sampling, autoscaling). Default 1 s. */
  syncIntervalMs?: number;
}

export interface UpHandle {
  gatewayUrl: string;
  socketPath: string;
  controller: Controller;
  /** The gateway's metrics (requests per model, for the terminal view). */
  metrics: Registry;
  /** Drains and stops every replica, closes the gateway and the admin socket. Idempotent. */
  shutdown(reason: string): Promise<void>;
  /** Resolves once shutdown has finished (after a signal or `berth down`). */
  closed: Promise<void>;
}

export type UpErrorCode = "BERTH_UP_RUNNING" | "BERTH_UP_SOCKET_PATH" | "BERTH_UP_NO_MODEL";

export class UpError extends Error {
  constructor(
    readonly code: UpErrorCode,
    message: string,
    /** The failure is the user's input (exit 2), not the machine's or the network's (exit 1). */
    readonly badInput = false,
  ) {
    super(message);
    this.name = "UpError";
  }
}

// sockaddr_un.sun_path holds 108 bytes on Linux, 104 on macOS.
const MAX_SOCKET_PATH = 100;

export interface LoadDeploymentsOptions {
  logger?: Logger;
  /** Where pull progress is drawn (a bar on a terminal, periodic lines otherwise); default stderr. */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * Parses a spec's text (errors name the file and line: SpecError) and pulls every model's source
 * through the model store, once per distinct source, before any replica starts. A model whose
 * source cannot be had carries modelFailure instead of a path; the other models are unaffected.
 */
export async function loadDeployments(
  file: string,
  text: string,
  options: LoadDeploymentsOptions = {},
): Promise<DeploymentToApply[]> {
  const deployments: ModelDeployment[] = parseSpecText(text, file);
  const bars = new Map<string, ProgressRenderer>();
  const resolved = await resolveModelSources(
    deployments.map((deployment) => deployment.spec.model.source),
    {
      specFile: file,
      onProgress: (source, progress) => {
        // Only real downloads draw: a cached model resolves silently.
        if (progress.phase !== "download") return;
        let bar = bars.get(source);
        if (!bar) {
          bar = createProgress({
            title: `pull ${source}`,
            unit: "bytes",
            ...(options.progressStream ? { stream: options.progressStream } : {}),
          });
          bars.set(source, bar);
        }
        bar.update(
          progress.totalBytes === undefined ? "downloading" : "",
          progress.receivedBytes,
          progress.totalBytes,
        );
      },
      onPulled: (pulled) => {
        bars.get(pulled.source)?.finish();
        options.logger?.info(
          {
            source: pulled.source,
            path: pulled.path,
            fromCache: pulled.fromCache,
            sizeBytes: pulled.sizeBytes,
          },
          pulled.fromCache ? "model found in the cache" : "model pulled",
        );
      },
    },
  );
  for (const [source, result] of resolved) {
    bars.get(source)?.finish();
    if (!result.ok) options.logger?.error({ source, code: result.failure.code }, result.failure.message);
  }
  return deployments.map((deployment) => {
    const result = resolved.get(deployment.spec.model.source);
    if (result?.ok) return { deployment, resolvedModel: result.pulled.path };
    return {
      deployment,
      modelFailure:
        result?.ok === false ? result.failure : { code: "BERTH_MODEL_SOURCE", message: "not resolved" },
    };
  });
}

export async function startUp(options: UpOptions): Promise<UpHandle> {
  const { logger } = options;
  const socketPath = adminSocketPath(options.stateDir);
  if (socketPath.length > MAX_SOCKET_PATH) {
    throw new UpError(
      "BERTH_UP_SOCKET_PATH",
      `the admin socket path ${socketPath} is too long for a Unix socket; use a shorter BERTH_HOME`,
    );
  }
  await refuseIfRunning(socketPath);
  let specFile = resolve(options.specFile);
  const specText = await readFile(specFile, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new SpecError("BERTH_SPEC_NOT_FOUND", [
      { file: options.specFile, path: "", message: error.code === "ENOENT" ? "no such file" : String(error) },
    ]);
  });
  const initial = await loadDeployments(options.specFile, specText, { logger });
  const failed = initial.filter((item) => item.modelFailure !== undefined);
  if (initial.length > 0 && failed.length === initial.length) {
    // Nothing could run: say why at once rather than serve a gateway of 503s.
    throw new UpError(
      "BERTH_UP_NO_MODEL",
      failed
        .map((item) => `model ${item.deployment.metadata.name}: ${item.modelFailure?.message}`)
        .join("\n"),
      // Exit 2 when the spec's own models are bad (a file the check refuses), 1 when the world failed.
      failed.every((item) => isModelInputFailure(item.modelFailure?.code ?? "")),
    );
  }

  const runtime = new LocalRuntime({
    stateDir: options.stateDir,
    logger: logger.child({ component: "runtime" }),
  });
  const controller = new Controller({
    runtime,
    logger: logger.child({ component: "controller" }),
    syncIntervalMs: options.syncIntervalMs,
  });
  controller.apply(initial);

  let gateway: Gateway;
  try {
    gateway = await buildGateway({
      directory: controller,
      logger,
      host: options.host,
      port: options.port,
      history: {},
      console: upConsoleSource(controller, runtime),
    });
  } catch (error) {
    await controller.shutdown();
    throw error;
  }
  controller.setLoadSource(gateway.load);
  registerControllerMetrics(controller, gateway.metrics.registry);

  let gatewayUrl: string;
  try {
    gatewayUrl = await gateway.listen();
  } catch (error) {
    await Promise.all([gateway.close(), controller.shutdown()]);
    throw error;
  }

  let lastAppliedText = specText;
  const applyText = async (file: string, text: string): Promise<ApplyResultView> => {
    let deployments: DeploymentToApply[];
    try {
      deployments = await loadDeployments(file, text, { logger });
    } catch (error) {
      if (error instanceof SpecError) throw new AdminRequestError(error.code, error.message);
      if (error instanceof ModelSourceError) throw new AdminRequestError(error.code, error.message);
      throw error;
    }
    const result = controller.apply(deployments);
    const warnings: string[] = [];
    await gateway.checkConfig().catch((error: unknown) => {
      warnings.push(error instanceof Error ? error.message : String(error));
    });
    specFile = resolve(file);
    lastAppliedText = text;
    const failed = deployments.flatMap((item) =>
      item.modelFailure ? [{ name: item.deployment.metadata.name, ...item.modelFailure }] : [],
    );
    logger.info({ file, ...result, warnings, failed }, "spec applied");
    return {
      ...result,
      ...(warnings.length > 0 ? { warnings } : {}),
      ...(failed.length > 0 ? { failed } : {}),
    };
  };

  let shutdownPromise: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolveFn) => {
    resolveClosed = resolveFn;
  });
  let admin: FastifyInstance | undefined;
  let watcher: FSWatcher | undefined;
  const shutdown = (reason: string): Promise<void> => {
    shutdownPromise ??= (async () => {
      logger.info({ reason }, "berth up: shutting down");
      watcher?.close();
      await Promise.all([gateway.close(), controller.shutdown()]);
      await admin?.close();
      await unlink(socketPath).catch(() => undefined);
      resolveClosed();
    })();
    return shutdownPromise;
  };

  try {
    admin = await startAdminServer({
      socketPath,
      controller,
      runtime,
      info: { pid: process.pid, startedAt: Date.now(), gatewayUrl, specFile: () => specFile },
      apply: applyText,
      onDown: () => void shutdown("berth down"),
    });
  } catch (error) {
    await shutdown("admin socket failed");
    throw error;
  }

  if (options.watch)
    watcher = watchSpec(options.specFile, logger, async (text) => {
      if (text === lastAppliedText) return;
      await applyText(options.specFile, text);
    });

  controller.start();
  return { gatewayUrl, socketPath, controller, metrics: gateway.metrics.registry, shutdown, closed };
}

async function refuseIfRunning(socketPath: string): Promise<void> {
  try {
    const status = await adminCall(socketPath, upStatusSchema, "GET", "/v1/status");
    throw new UpError(
      "BERTH_UP_RUNNING",
      `berth up is already running for this BERTH_HOME (pid ${status.pid}, gateway ${status.gatewayUrl}); berth down stops it`,
    );
  } catch (error) {
    if (error instanceof AdminUnavailableError) return; // none, or a stale socket: replaced on listen
    throw error;
  }
}

/**
 * Watches the spec's directory (editors replace files by rename, which a watch on the file
 * itself loses) and calls back with the new text after changes settle for 300 ms.
 */
function watchSpec(file: string, logger: Logger, onText: (text: string) => Promise<void>): FSWatcher {
  const name = basename(file);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(resolve(file)), (_event, changed) => {
    if (changed !== null && changed !== name) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      readFile(file, "utf8")
        .then(onText)
        .catch((error: unknown) => {
          logger.error(
            { file, error: error instanceof Error ? error.message : String(error) },
            "spec change not applied",
          );
        });
    }, 300);
  });
  watcher.on("close", () => clearTimeout(timer));
  return watcher;
}
