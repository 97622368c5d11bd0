// The serve lifecycle in-process (real sockets, the in-memory engine): alive before ready, ready after
// the engine loads, and a shutdown whose grace period runs out cancels what is still in flight.
import { describe, expect, it } from "vitest";
import { MemoryEngine } from "../../test/support/memory-engine.js";
import { createLogger } from "../util/log.js";
import { startServer } from "./serve.js";

const logger = createLogger({ level: "silent" });

describe("startServer", () => {
  it("answers /healthz while the model loads and /readyz once it is loaded", async () => {
    let finishLoading!: (engine: MemoryEngine) => void;
    const loading = new Promise<MemoryEngine>((resolve) => {
      finishLoading = resolve;
    });
    const server = await startServer({
      engine: { modelPath: "unused.gguf" },
      host: "127.0.0.1",
      port: 0,
      gracePeriodMs: 1000,
      logger,
      createEngine: () => loading,
    });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    finishLoading(new MemoryEngine());
    await server.ready;
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    await server.shutdown();
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it("cancels in-flight requests when the grace period runs out, then closes", async () => {
    const engine = new MemoryEngine({ stepMs: 20 });
    const server = await startServer({
      engine: { modelPath: "unused.gguf" },
      host: "127.0.0.1",
      port: 0,
      gracePeriodMs: 300,
      logger,
      createEngine: async () => engine,
    });
    await server.ready;
    const body = { model: "memory-model", prompt: "a", max_tokens: 200 };
    const plain = fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const streamed = fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, stream: true }),
    });
    const streamResponse = await streamed;
    expect(streamResponse.status).toBe(200);
    const deadline = Date.now() + 10_000;
    while (engine.stats().running < 2) {
      if (Date.now() > deadline) throw new Error("both requests never ran");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await server.shutdown();
    const plainResponse = await plain;
    expect(plainResponse.status).toBe(503);
    expect(((await plainResponse.json()) as { error: { code: string } }).error.code).toBe("BERTH_DRAINING");
    const events = (await streamResponse.text()).trim().split("\n\n");
    expect(events).not.toContain("data: [DONE]");
    expect(JSON.parse(events.at(-1)!.slice("data: ".length)).error.code).toBe("BERTH_DRAINING");
    expect(engine.cancelled).toBe(2);
  });
});
