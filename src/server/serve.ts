// One model-server process: listen first (alive, not ready), load the engine, become ready; on
// shutdown stop admitting, let in-flight requests finish within the grace period, then close.

import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import type { Engine } from "../engine/types.js";
import type { Logger } from "../util/log.js";
import type { StartupClock } from "../util/startup.js";
import { buildServerApp } from "./app.js";
import { HttpError } from "./errors.js";
import { ServerLifecycle } from "./lifecycle.js";

/** After the grace period, how long cancelled requests get to send their error before their sockets close. */
const CANCELLED_RESPONSE_GRACE_MS = 5000;

export interface EngineSettings {
  modelPath: string;
  modelId?: string;
  parallel?: number;
  contextPerSequence?: number;
  threads?: number;
  maxQueue?: number;
  /** False: no prompt prefix is reused from a slot's cache (bench:multiturn's baseline). Default true. */
  prefixReuse?: boolean;
}

export interface ServeOptions {
  engine: EngineSettings;
  host: string;
  port: number;
  gracePeriodMs: number;
  bodyLimitBytes?: number;
  requestTimeoutMs?: number;
  logPrompts?: boolean;
  logger: Logger;
  /** How the engine is created; the llama.cpp engine unless a test injects a fault. */
  createEngine?: (settings: EngineSettings, logger: Logger) => Promise<Engine>;
  /** Cold-start phases so far; given, the ready line carries them (`startup`) with the loading phases added. */
  startup?: StartupClock;
}

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly lifecycle: ServerLifecycle;
  /** The base URL actually bound (port 0 resolved). */
  readonly url: string;
  /** Resolves once the engine is loaded and the server is ready; rejects if loading fails. */
  readonly ready: Promise<void>;
  /** Drains and closes; resolves when everything is closed. Safe to call more than once. */
  shutdown(): Promise<void>;
  /** Cancels in-flight requests at once (a second signal, or the grace period running out). */
  cancelInFlight(): void;
}

function llamaEngineCreator(startup: StartupClock | undefined) {
  return async (settings: EngineSettings, logger: Logger): Promise<Engine> => {
    const { createLlamaEngine } = await import("../engine/llamacpp.js");
    return createLlamaEngine({
      ...settings,
      logger,
      ...(startup ? { onStartupPhase: (phase: string) => startup.mark(phase) } : {}),
    });
  };
}

export function urlOf(address: AddressInfo): string {
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const { logger } = options;
  const lifecycle = new ServerLifecycle();
  const app = await buildServerApp({
    lifecycle,
    logger,
    ...(options.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: options.bodyLimitBytes }),
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
    logPrompts: options.logPrompts ?? false,
  });
  // Listen before loading: /healthz answers and /readyz says 503 while the model loads.
  await app.listen({ host: options.host, port: options.port });
  const url = urlOf(app.server.address() as AddressInfo);
  options.startup?.mark("listening");
  logger.info({ url, modelPath: options.engine.modelPath }, "listening; loading the model");

  let engine: Engine | undefined;
  const startedAt = performance.now();
  const ready = (options.createEngine ?? llamaEngineCreator(options.startup))(options.engine, logger).then(
    async (loaded) => {
      if (lifecycle.state === "draining") {
        await loaded.close();
        return;
      }
      engine = loaded;
      lifecycle.setEngine(loaded);
      const stats = loaded.stats();
      options.startup?.mark("ready");
      logger.info(
        {
          url,
          model: loaded.info.id,
          slots: stats.slots,
          contextPerSequence: loaded.info.contextPerSequence,
          ...(loaded.info.engineBuild ? { engineBuild: loaded.info.engineBuild } : {}),
          loadMs: Math.round(performance.now() - startedAt),
          ...(options.startup ? { startup: options.startup.report() } : {}),
        },
        "ready",
      );
    },
  );

  const cancelInFlight = () =>
    lifecycle.abortAll(new HttpError("BERTH_DRAINING", "the server shut down before the request finished"));

  let closed: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    closed ??= (async () => {
      lifecycle.beginDrain();
      logger.info({ inFlight: lifecycle.inFlight, gracePeriodMs: options.gracePeriodMs }, "draining");
      // Stops accepting connections now; resolves once every open connection has closed.
      const serverClosed = app.close();
      let lastResort: NodeJS.Timeout | undefined;
      const grace = setTimeout(() => {
        logger.warn({ inFlight: lifecycle.inFlight }, "grace period over; cancelling in-flight requests");
        cancelInFlight();
        // A cancelled stream whose client stopped reading never finishes its response: close its socket.
        lastResort = setTimeout(() => app.server.closeAllConnections(), CANCELLED_RESPONSE_GRACE_MS);
      }, options.gracePeriodMs);
      await lifecycle.whenIdle();
      clearTimeout(grace);
      clearTimeout(lastResort);
      // What is left are idle keep-alive connections: their clients get a clean close.
      app.server.closeAllConnections();
      await serverClosed;
      // A model still loading is not waited for: the process exits, and the loader closes it if it finishes.
      await engine?.close();
      logger.info("stopped");
    })();
    return closed;
  };

  return { app, lifecycle, url, ready, shutdown, cancelInFlight };
}
