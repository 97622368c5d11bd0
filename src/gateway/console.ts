// The web console's read-only API on the gateway: GET /api/history (the sampled charts data),
// GET /api/events (the controller's events) and GET /api/logs (a replica's log tail). All sit
// behind the same API keys as /api/status; queries are parsed with zod, errors leave in OpenAI's shape.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { GatewayError } from "./errors.js";
import type { GatewayHistory } from "./history.js";

export interface ConsoleEvent {
  seq: number;
  /** ms since epoch. */
  at: number;
  model: string;
  type: string;
  replica?: string;
  message: string;
}

export interface ConsoleLogLine {
  replica: string;
  line: string;
}

/** What a controller (berth up) lends the console; a bare gateway has none. */
export interface ConsoleSource {
  /** Desired replicas per served model name. */
  desiredReplicas(): Record<string, number>;
  /** Recent events, oldest first. */
  events(): readonly ConsoleEvent[];
  /**
   * The last `lines` lines of each of a model's replicas, or of one of them. Resolves undefined
   * for a model it does not know (served or metadata name).
   */
  logTail(model: string, options: { replica?: string; lines: number }): Promise<ConsoleLogLine[] | undefined>;
}

export interface ConsoleApiOptions {
  history?: GatewayHistory;
  source?: ConsoleSource;
  /** The gateway's check for /api/*: undefined when allowed, else the error to send. */
  authorize(request: FastifyRequest): Promise<GatewayError | undefined>;
  sendError(reply: FastifyReply, error: GatewayError): FastifyReply;
}

const eventsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
  model: z.string().min(1).max(253).optional(),
});

const logsQuery = z.strictObject({
  model: z.string().min(1).max(253),
  replica: z
    .string()
    .regex(/^[\w.:-]{1,253}$/, "replica must be a replica id")
    .optional(),
  tail: z.coerce.number().int().min(1).max(2000).default(200),
});

function invalidQuery(error: z.ZodError): GatewayError {
  const issue = error.issues[0];
  const param = issue?.path.join(".") || null;
  return new GatewayError(
    "BERTH_INVALID_REQUEST",
    `invalid query${param ? ` parameter "${param}"` : ""}: ${issue?.message ?? "bad value"}`,
    param ? { param } : {},
  );
}

function withoutController(what: string): GatewayError {
  return new GatewayError("BERTH_NOT_FOUND", `this gateway has no ${what} (berth up has them)`);
}

export function registerConsoleApi(app: FastifyInstance, options: ConsoleApiOptions): void {
  const { history, source, authorize, sendError } = options;

  app.get("/api/history", async (request, reply) => {
    const denied = await authorize(request);
    if (denied) return sendError(reply, denied);
    if (!history)
      return sendError(
        reply,
        new GatewayError("BERTH_NOT_FOUND", "this gateway keeps no history (berth up keeps one)"),
      );
    reply.header("cache-control", "no-store");
    return history.snapshot();
  });

  app.get("/api/events", async (request, reply) => {
    const denied = await authorize(request);
    if (denied) return sendError(reply, denied);
    const parsed = eventsQuery.safeParse(request.query);
    if (!parsed.success) return sendError(reply, invalidQuery(parsed.error));
    if (!source) return sendError(reply, withoutController("controller events"));
    const { after, model } = parsed.data;
    reply.header("cache-control", "no-store");
    return {
      events: source
        .events()
        .filter(
          (event) =>
            (after === undefined || event.seq > after) && (model === undefined || event.model === model),
        )
        .map(({ seq, at, model: name, type, replica, message }) => ({
          seq,
          at,
          model: name,
          type,
          ...(replica === undefined ? {} : { replica }),
          message,
        })),
    };
  });

  app.get("/api/logs", async (request, reply) => {
    const denied = await authorize(request);
    if (denied) return sendError(reply, denied);
    const parsed = logsQuery.safeParse(request.query);
    if (!parsed.success) return sendError(reply, invalidQuery(parsed.error));
    if (!source) return sendError(reply, withoutController("replica logs"));
    const { model, replica, tail } = parsed.data;
    const lines = await source.logTail(model, { lines: tail, ...(replica === undefined ? {} : { replica }) });
    if (lines === undefined)
      return sendError(
        reply,
        new GatewayError("BERTH_MODEL_NOT_FOUND", `model "${model}" is not served here`, { param: "model" }),
      );
    reply.header("cache-control", "no-store");
    return { model, lines };
  });
}
