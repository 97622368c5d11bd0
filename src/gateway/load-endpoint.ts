// GET /api/load: the load this gateway sees per model (LoadSnapshot), read by the operator's
// autoscale loop from every gateway replica. A long poll: with `wakes` equal to the count the caller
// saw last and `waitMs`, the answer waits until a request is held (a wake) or waitMs passes, so the
// loop learns of a request waiting at zero replicas at once instead of on its next period.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { LoadSnapshot, LoadSource } from "./directory.js";

export const LOAD_PATH = "/api/load";
/** The longest a poll may wait: well under proxies' idle timeouts (the API server's proxy included). */
export const MAX_LOAD_WAIT_MS = 30_000;

export interface LoadReport {
  /** This gateway (its pod name in a cluster). */
  gateway: string;
  /** ms since epoch when the report was made. */
  at: number;
  /** Wakes (requests held at zero ready replicas) since the gateway started. */
  wakes: number;
  models: LoadSnapshot[];
}

export const loadReportSchema = z.object({
  gateway: z.string(),
  at: z.number(),
  wakes: z.number().int().min(0),
  models: z.array(
    z.object({
      model: z.string(),
      inFlight: z.number(),
      held: z.number(),
      completed: z.number(),
      lastRequestAt: z.number(),
      perUpstream: z.record(z.string(), z.number()),
    }),
  ),
});

export interface LoadEndpointOptions {
  gateway: string;
  load: LoadSource;
  models: () => string[];
  /** Subscribes to wakes (KubernetesDirectory.onWake); returns the unsubscribe function. */
  onWake: (listener: (model: string) => void) => () => void;
  now?: () => number;
}

const querySchema = z.object({
  wakes: z.coerce.number().int().min(0).optional(),
  waitMs: z.coerce.number().int().min(0).max(MAX_LOAD_WAIT_MS).optional(),
});

/** Registers the route; returns a function that answers every waiting poll (call it on close). */
export function registerLoadEndpoint(app: FastifyInstance, options: LoadEndpointOptions): () => void {
  const now = options.now ?? Date.now;
  let wakes = 0;
  const waiting = new Set<() => void>();
  const release = () => {
    for (const done of [...waiting]) done();
  };
  const unsubscribe = options.onWake(() => {
    wakes += 1;
    release();
  });

  const report = (): LoadReport => ({
    gateway: options.gateway,
    at: now(),
    wakes,
    models: options.models().map((model) => options.load.load(model)),
  });

  app.get(LOAD_PATH, async (request, reply) => {
    const query = querySchema.safeParse(request.query);
    if (!query.success) {
      const issue = query.error.issues[0];
      return reply.code(400).send({
        error: {
          message: `query parameter ${issue?.path.join(".")}: ${issue?.message}`,
          type: "invalid_request_error",
          param: issue?.path.join("."),
          code: "BERTH_INVALID_REQUEST",
        },
      });
    }
    const { wakes: seen, waitMs } = query.data;
    if (seen === undefined || waitMs === undefined || seen !== wakes) return report();
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        waiting.delete(done);
        reply.raw.off("close", done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      waiting.add(done);
      // The poller went away (ServerResponse, not IncomingMessage: that one closes once the body is read).
      reply.raw.once("close", done);
    });
    return report();
  });

  return () => {
    unsubscribe();
    release();
  };
}
