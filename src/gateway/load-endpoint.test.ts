// GET /api/load: the report's shape, the long poll that a wake answers early, bad queries refused.
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { sumReports } from "../operator/gateway-load.js";
import { LoadTracker } from "./load.js";
import { LOAD_PATH, loadReportSchema, registerLoadEndpoint } from "./load-endpoint.js";

function setup() {
  const app = Fastify();
  const load = new LoadTracker(() => 1_000);
  const wakeListeners = new Set<(model: string) => void>();
  const release = registerLoadEndpoint(app, {
    gateway: "gw-0",
    load,
    models: () => ["tiny", "other"],
    onWake: (listener) => {
      wakeListeners.add(listener);
      return () => wakeListeners.delete(listener);
    },
    now: () => 2_000,
  });
  const wake = (model: string) => {
    for (const listener of wakeListeners) listener(model);
  };
  return { app, load, wake, release, wakeListeners };
}

describe("the gateway's load endpoint", () => {
  let current: ReturnType<typeof setup> | undefined;
  afterEach(async () => {
    current?.release();
    await current?.app.close();
  });

  it("reports every served model's load", async () => {
    current = setup();
    current.load.requestStarted("tiny");
    current.load.holdStarted("tiny");
    current.load.upstreamStarted("tiny", "pod-a");
    const response = await current.app.inject({ method: "GET", url: LOAD_PATH });
    expect(response.statusCode).toBe(200);
    const report = loadReportSchema.parse(response.json());
    expect(report).toEqual({
      gateway: "gw-0",
      at: 2_000,
      wakes: 0,
      models: [
        {
          model: "tiny",
          inFlight: 1,
          held: 1,
          completed: 0,
          lastRequestAt: 1_000,
          perUpstream: { "pod-a": 1 },
        },
        { model: "other", inFlight: 0, held: 0, completed: 0, lastRequestAt: 0, perUpstream: {} },
      ],
    });
  });

  it("holds a poll that saw the current wake count until the next wake", async () => {
    current = setup();
    const poll = current.app.inject({ method: "GET", url: `${LOAD_PATH}?wakes=0&waitMs=30000` });
    let answered = false;
    void poll.then(() => {
      answered = true;
    });
    // A request sent after it has been answered: the poll, sent first, is waiting by now.
    await current.app.inject({ method: "GET", url: LOAD_PATH });
    expect(answered).toBe(false);
    current.wake("tiny");
    const response = await poll;
    expect(response.json().wakes).toBe(1);
  });

  it("answers at once when the caller has not seen the latest wake", async () => {
    current = setup();
    current.wake("tiny");
    const response = await current.app.inject({ method: "GET", url: `${LOAD_PATH}?wakes=0&waitMs=30000` });
    expect(response.json().wakes).toBe(1);
  });

  it("answers waiting polls when released (gateway shutdown)", async () => {
    current = setup();
    const poll = current.app.inject({ method: "GET", url: `${LOAD_PATH}?wakes=0&waitMs=30000` });
    await current.app.inject({ method: "GET", url: LOAD_PATH });
    current.release();
    expect((await poll).statusCode).toBe(200);
    expect(current.wakeListeners.size).toBe(0);
  });

  it.each([
    ["waitMs=-1&wakes=0", "waitMs"],
    ["waitMs=99999999&wakes=0", "waitMs"],
    ["wakes=abc&waitMs=10", "wakes"],
  ])("refuses ?%s naming %s", async (query, param) => {
    current = setup();
    const response = await current.app.inject({ method: "GET", url: `${LOAD_PATH}?${query}` });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.param).toBe(param);
  });
});

describe("sumReports", () => {
  it("adds counts of every gateway per model and keeps the latest request time", () => {
    const snapshot = (model: string, inFlight: number, lastRequestAt: number, perUpstream = {}) => ({
      model,
      inFlight,
      held: inFlight > 2 ? 1 : 0,
      completed: 10,
      lastRequestAt,
      perUpstream,
    });
    const sums = sumReports([
      { gateway: "a", at: 0, wakes: 0, models: [snapshot("tiny", 3, 50, { p1: 2 }), snapshot("x", 0, 0)] },
      { gateway: "b", at: 0, wakes: 4, models: [snapshot("tiny", 1, 70, { p1: 1, p2: 1 })] },
    ]);
    expect(sums.get("tiny")).toEqual({
      model: "tiny",
      inFlight: 4,
      held: 1,
      completed: 20,
      lastRequestAt: 70,
      perUpstream: { p1: 3, p2: 1 },
    });
    expect(sums.get("x")?.inFlight).toBe(0);
  });
});
