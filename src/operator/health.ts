// `berth operator`'s HTTP endpoint, as controller-runtime's manager serves one: /healthz (the process
// works), /readyz (leading with synced caches, or a standby campaigning normally), /metrics (Prometheus).
import Fastify, { type FastifyInstance } from "fastify";
import type { Registry } from "prom-client";

/** One probe's answer: 200 with `detail` when ok, else 503 with it as the reason. One line. */
export interface Check {
  ok: boolean;
  detail: string;
}

/** What the probes ask (the Operator answers; tests pass a fake). */
export interface HealthSource {
  live(): Check;
  ready(): Check;
}

export interface HealthServerOptions {
  source: HealthSource;
  registry: Registry;
  host: string;
  /** 0 picks a free port. */
  port: number;
}

export interface HealthServer {
  /** http://host:port (0.0.0.0 shown as 127.0.0.1, where a local client reaches it). */
  url: string;
  close(): Promise<void>;
}

export function healthApp(source: HealthSource, registry: Registry): FastifyInstance {
  const app = Fastify({ logger: false });
  for (const [path, check] of [
    ["/healthz", () => source.live()],
    ["/readyz", () => source.ready()],
  ] as const) {
    app.get(path, async (_request, reply) => {
      const { ok, detail } = check();
      return reply
        .code(ok ? 200 : 503)
        .type("text/plain; charset=utf-8")
        .send(`${detail.replaceAll("\n", " ")}\n`);
    });
  }
  app.get("/metrics", async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
  return app;
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const app = healthApp(options.source, options.registry);
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await app.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const host = options.host.includes(":")
    ? `[${options.host}]`
    : options.host === "0.0.0.0"
      ? "127.0.0.1"
      : options.host;
  return { url: `http://${host}:${port}`, close: () => app.close() };
}
