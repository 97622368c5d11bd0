// The console's API in-process (app.inject): behind the API keys like /api/status, queries checked
// (400 with the parameter named), 404 in OpenAI's shape where a bare gateway has nothing to give, and
// what a controller lends passed through. The source here is an in-memory stand-in for berth up's
// controller (test/up/console.test.ts uses the real one).
import { describe, expect, it } from "vitest";
import { captureLogger, deployment, MemoryDirectory } from "../../test/gateway/fixtures.js";
import { buildGateway, type Gateway } from "./app.js";
import type { ConsoleEvent, ConsoleLogLine, ConsoleSource } from "./console.js";

const KEY = "sk-console-unit-1";

class MemorySource implements ConsoleSource {
  readonly events_: ConsoleEvent[] = [
    { seq: 1, at: 1_000, model: "tiny", type: "apply", message: "model tiny added" },
    { seq: 2, at: 2_000, model: "tiny", type: "replica-ready", replica: "tiny-a", message: "ready" },
    { seq: 3, at: 3_000, model: "other", type: "autoscale", message: "2 replicas" },
  ];
  readonly lines: ConsoleLogLine[] = [
    { replica: "tiny-a", line: '{"level":30,"msg":"ready"}' },
    { replica: "tiny-b", line: '{"level":30,"msg":"listening"}' },
  ];
  desiredReplicas() {
    return { tiny: 2 };
  }
  events() {
    return this.events_;
  }
  async logTail(model: string, options: { replica?: string; lines: number }) {
    if (model !== "tiny") return undefined;
    return this.lines
      .filter((line) => options.replica === undefined || line.replica === options.replica)
      .slice(-options.lines);
  }
}

async function gateway(options: { auth?: boolean; source?: boolean; history?: boolean }): Promise<Gateway> {
  const directory = new MemoryDirectory().addModel("tiny", {
    deployment: deployment(
      "tiny",
      options.auth ? { auth: { enabled: true, apiKeysFrom: "env:CONSOLE_KEYS" } } : {},
    ),
  });
  return buildGateway({
    directory,
    logger: captureLogger().logger,
    port: 0,
    keySources: { env: { CONSOLE_KEYS: `ops ${KEY}` }, readFile: async () => "" },
    ...(options.source ? { console: new MemorySource() } : {}),
    ...(options.history ? { history: { intervalMs: 2_000, capacity: 10 } } : {}),
  });
}

describe("console API", () => {
  it("answers 401 without the key and 200 with it on every console route", async () => {
    const app = await gateway({ auth: true, source: true, history: true });
    try {
      for (const url of ["/api/history", "/api/events", "/api/logs?model=tiny"]) {
        const denied = await app.app.inject({ method: "GET", url });
        expect(denied.statusCode, url).toBe(401);
        expect(denied.json().error.code).toBe("BERTH_UNAUTHORIZED");
        const allowed = await app.app.inject({
          method: "GET",
          url,
          headers: { authorization: `Bearer ${KEY}` },
        });
        expect(allowed.statusCode, url).toBe(200);
        expect(allowed.headers["cache-control"]).toBe("no-store");
      }
    } finally {
      await app.close();
    }
  });

  it("passes events after a sequence number, for one model, and log lines of one replica", async () => {
    const app = await gateway({ source: true });
    try {
      const events = await app.app.inject({ method: "GET", url: "/api/events?after=1&model=tiny" });
      expect(events.json()).toEqual({
        events: [
          { seq: 2, at: 2_000, model: "tiny", type: "replica-ready", replica: "tiny-a", message: "ready" },
        ],
      });
      const logs = await app.app.inject({ method: "GET", url: "/api/logs?model=tiny&replica=tiny-b&tail=5" });
      expect(logs.json()).toEqual({
        model: "tiny",
        lines: [{ replica: "tiny-b", line: '{"level":30,"msg":"listening"}' }],
      });
      const unknown = await app.app.inject({ method: "GET", url: "/api/logs?model=nope" });
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json().error).toMatchObject({ code: "BERTH_MODEL_NOT_FOUND", param: "model" });
    } finally {
      await app.close();
    }
  });

  it.each([
    ["/api/logs", "model"],
    ["/api/logs?model=tiny&tail=0", "tail"],
    ["/api/logs?model=tiny&tail=abc", "tail"],
    ["/api/logs?model=tiny&tail=999999", "tail"],
    ["/api/logs?model=tiny&replica=%3Cscript%3E", "replica"],
    ["/api/logs?model=tiny&follow=true", null],
    ["/api/events?after=-1", "after"],
  ])("refuses %s with 400 naming %s", async (url, param) => {
    const app = await gateway({ source: true });
    try {
      const response = await app.app.inject({ method: "GET", url });
      expect(response.statusCode).toBe(400);
      expect(response.json().error.code).toBe("BERTH_INVALID_REQUEST");
      if (param) expect(response.json().error.param).toBe(param);
    } finally {
      await app.close();
    }
  });

  it("says 404 in OpenAI's shape where a bare gateway has no history, events or logs", async () => {
    const app = await gateway({});
    try {
      for (const url of ["/api/history", "/api/events", "/api/logs?model=tiny"]) {
        const response = await app.app.inject({ method: "GET", url });
        expect(response.statusCode, url).toBe(404);
        expect(response.json().error.code).toBe("BERTH_NOT_FOUND");
      }
    } finally {
      await app.close();
    }
  });

  it("serves an empty history until the gateway listens, then samples it", async () => {
    const app = await gateway({ history: true, source: true });
    try {
      const empty = await app.app.inject({ method: "GET", url: "/api/history" });
      expect(empty.json()).toEqual({ intervalMs: 2_000, capacity: 10, models: {} });
      await app.listen();
      let points: Array<{ ready: number; desired: number | null }> = [];
      const deadline = Date.now() + 30_000;
      while (points.length === 0 && Date.now() < deadline) {
        const response = await app.app.inject({ method: "GET", url: "/api/history" });
        points = response.json().models.tiny ?? [];
        if (points.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(points[0]).toMatchObject({ ready: 0, desired: 2, tokensPerSecond: 0, queue: 0 });
    } finally {
      await app.close();
    }
  });
});
