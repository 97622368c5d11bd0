// Test fixtures for the gateway: an in-memory UpstreamDirectory, small HTTP servers standing in
// for replicas (to inject faults a real replica cannot be made to show on demand), a log capture.
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import type { Upstream, UpstreamDirectory, UpstreamState } from "../../src/gateway/directory.js";
import { type ModelDeployment, modelDeploymentSchema } from "../../src/spec/index.js";
import { createLogger, type Logger } from "../../src/util/log.js";

export function deployment(name: string, spec: Record<string, unknown> = {}): ModelDeployment {
  return modelDeploymentSchema.parse({
    apiVersion: "berth.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name },
    spec: { model: { source: "tiny://tiny" }, ...spec },
  });
}

interface ModelEntry {
  deployment?: ModelDeployment;
  upstreams: Upstream[];
}

/** A directory the test drives: set upstreams, change their state, see wake() calls. */
export class MemoryDirectory implements UpstreamDirectory {
  private readonly entries = new Map<string, ModelEntry>();
  private readonly listeners = new Set<() => void>();
  readonly wakes: string[] = [];
  onWake: ((model: string) => void) | undefined;

  addModel(name: string, options: { deployment?: ModelDeployment; upstreams?: Upstream[] } = {}): this {
    this.entries.set(name, {
      ...(options.deployment ? { deployment: options.deployment } : {}),
      upstreams: options.upstreams ?? [],
    });
    this.notify();
    return this;
  }

  setUpstreams(model: string, upstreams: Upstream[]): void {
    const entry = this.entries.get(model);
    if (!entry) throw new Error(`no model ${model}`);
    entry.upstreams = upstreams;
    this.notify();
  }

  setState(model: string, id: string, state: UpstreamState): void {
    this.setUpstreams(
      model,
      (this.entries.get(model)?.upstreams ?? []).map((u) => (u.id === id ? { ...u, state } : u)),
    );
  }

  models(): string[] {
    return [...this.entries.keys()];
  }

  deployment(model: string): ModelDeployment | undefined {
    return this.entries.get(model)?.deployment;
  }

  upstreams(model: string): readonly Upstream[] {
    return this.entries.get(model)?.upstreams ?? [];
  }

  wake(model: string): void {
    this.wakes.push(model);
    this.onWake?.(model);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

export function upstream(id: string, url: string, model = "m", state: UpstreamState = "ready"): Upstream {
  return { id, model, url, state, generation: 1 };
}

export interface FakeUpstream {
  url: string;
  server: Server;
  /** Requests received (all paths). */
  received: number;
  /** Requests received on paths other than /healthz. */
  apiRequests: number;
  /** Requests whose connection closed before their response ended. */
  abandoned: number;
  close(): Promise<void>;
}

export type FakeHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** An HTTP server standing in for a replica; `handler` decides how it (mis)behaves. */
export async function startFakeUpstream(handler: FakeHandler): Promise<FakeUpstream> {
  const sockets = new Set<import("node:net").Socket>();
  const fake: FakeUpstream = {
    url: "",
    server: createServer((req, res) => {
      fake.received++;
      if (req.url !== "/healthz") fake.apiRequests++;
      res.once("close", () => {
        if (!res.writableFinished) fake.abandoned++;
      });
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => handler(req, res, Buffer.concat(chunks)));
    }),
    received: 0,
    apiRequests: 0,
    abandoned: 0,
    async close() {
      for (const socket of sockets) socket.destroy();
      fake.server.close();
      await once(fake.server, "close").catch(() => {});
    },
  };
  fake.server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  fake.server.listen(0, "127.0.0.1");
  await once(fake.server, "listening");
  fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
  return fake;
}

/** Answers every request with JSON naming the replica and echoing what it received. */
export function echoHandler(name: string): FakeHandler {
  return (req, res, body) => {
    const payload = JSON.stringify({
      replica: name,
      path: req.url,
      requestId: req.headers["x-request-id"] ?? null,
      authorization: req.headers.authorization ?? null,
      body: body.toString("utf8"),
      usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 },
    });
    res.writeHead(200, { "content-type": "application/json", "x-request-id": "replica-made-this-up" });
    res.end(payload);
  };
}

/** A URL where nothing listens (connection refused). */
export async function refusedUrl(): Promise<string> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  server.close();
  await once(server, "close");
  return `http://127.0.0.1:${port}`;
}

export interface CapturedLogger {
  logger: Logger;
  text(): string;
}

export function captureLogger(): CapturedLogger {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8");
  });
  return { logger: createLogger({ level: "debug" }, stream), text: () => text };
}

/** Polls `condition` until true or the deadline; throws with `what` on timeout. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
