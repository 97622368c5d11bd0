// The admin API a running `berth up` serves on its Unix socket: status, events, logs, scale,
// apply, down. Bodies are parsed with zod; errors leave as {"error":{"code","message"}}.
import { chmod, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import type { Runtime } from "../runtime/types.js";
import {
  type ApplyResultView,
  applyRequestSchema,
  scaleRequestSchema,
  type UpStatus,
} from "./admin-protocol.js";
import { type Controller, ControllerError } from "./controller.js";

export interface AdminServerOptions {
  socketPath: string;
  controller: Controller;
  runtime: Runtime;
  info: { pid: number; startedAt: number; gatewayUrl: string; specFile: () => string };
  /** Parses, resolves and applies a spec file's text; throws AdminRequestError for bad input. */
  apply: (file: string, text: string) => Promise<ApplyResultView>;
  /** `berth down`: called after the answer is sent. */
  onDown: () => void;
}

/** A request the admin API refuses (bad spec, unknown model): 4xx with a stable code. */
export class AdminRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode = 400,
  ) {
    super(message);
    this.name = "AdminRequestError";
  }
}

export async function startAdminServer(options: AdminServerOptions): Promise<FastifyInstance> {
  const { controller, runtime, info } = options;
  // The directory is the access control: only its owner can reach the socket inside.
  await mkdir(dirname(options.socketPath), { recursive: true, mode: 0o700 });
  await chmod(dirname(options.socketPath), 0o700);
  await unlink(options.socketPath).catch(() => undefined);

  const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });
  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof AdminRequestError) {
      return reply.code(error.statusCode).send({ error: { code: error.code, message: error.message } });
    }
    if (error instanceof ControllerError) {
      return reply.code(404).send({ error: { code: error.code, message: error.message } });
    }
    const statusCode = (error as { statusCode?: number }).statusCode;
    const message = error instanceof Error ? error.message : String(error);
    if (statusCode !== undefined && statusCode < 500) {
      return reply.code(statusCode).send({ error: { code: "BERTH_ADMIN_BAD_REQUEST", message } });
    }
    return reply.code(500).send({ error: { code: "BERTH_ADMIN_INTERNAL", message } });
  });

  app.get("/v1/status", async (): Promise<UpStatus> => {
    const status = controller.status();
    return {
      pid: info.pid,
      startedAt: info.startedAt,
      gatewayUrl: info.gatewayUrl,
      specFile: info.specFile(),
      runtime: status.runtime,
      models: status.models.map((model) => ({
        ...model,
        autoscaling: {
          ...model.autoscaling,
          lastDecision: model.autoscaling.lastDecision && {
            ...model.autoscaling.lastDecision,
            inputs: { ...model.autoscaling.lastDecision.inputs },
          },
        },
      })),
    };
  });

  app.get<{ Querystring: { model?: string } }>("/v1/events", async (request) => {
    const model = request.query.model;
    const name = model === undefined ? undefined : requireModel(controller, model);
    return { events: controller.events(name) };
  });

  app.get<{ Querystring: { model?: string; follow?: string; tail?: string } }>(
    "/v1/logs",
    async (request, reply) => {
      const name = requireModel(controller, request.query.model ?? "");
      const tail = request.query.tail === undefined ? 100 : Number(request.query.tail);
      if (!Number.isInteger(tail) || tail < 0) {
        throw new AdminRequestError("BERTH_ADMIN_BAD_REQUEST", "tail must be a whole number ≥ 0");
      }
      const abort = new AbortController();
      reply.raw.on("close", () => abort.abort());
      reply.hijack();
      reply.raw.writeHead(200, { "content-type": "application/x-ndjson" });
      try {
        for await (const line of runtime.logs(name, {
          follow: request.query.follow === "true",
          tailLines: tail,
          signal: abort.signal,
        })) {
          if (abort.signal.aborted) break;
          reply.raw.write(`${JSON.stringify(line)}\n`);
        }
      } finally {
        reply.raw.end();
      }
    },
  );

  app.post("/v1/scale", async (request) => {
    const parsed = scaleRequestSchema.safeParse(request.body);
    if (!parsed.success) throw new AdminRequestError("BERTH_ADMIN_BAD_REQUEST", parsed.error.message);
    const name = requireModel(controller, parsed.data.model);
    controller.scale(name, parsed.data.replicas ?? undefined);
    return { model: name, manualFloor: parsed.data.replicas };
  });

  app.post("/v1/apply", async (request) => {
    const parsed = applyRequestSchema.safeParse(request.body);
    if (!parsed.success) throw new AdminRequestError("BERTH_ADMIN_BAD_REQUEST", parsed.error.message);
    return options.apply(parsed.data.file, parsed.data.text);
  });

  app.post("/v1/down", async (_request, reply) => {
    reply.raw.once("finish", () => options.onDown());
    return { pid: info.pid };
  });

  await app.listen({ path: options.socketPath });
  await chmod(options.socketPath, 0o600);
  return app;
}

function requireModel(controller: Controller, model: string): string {
  const name = controller.modelName(model);
  if (!name)
    throw new AdminRequestError("BERTH_MODEL_NOT_FOUND", `no model "${model}" in this berth up`, 404);
  return name;
}
