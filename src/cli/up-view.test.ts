import { describe, expect, it } from "vitest";
import { formatLogLine } from "../util/log-pretty.js";
import { renderView } from "./up-view.js";

describe("renderView", () => {
  const base = { gatewayUrl: "http://127.0.0.1:8080" };

  it("shows where to go, each model's replicas and the last event", () => {
    const lines = renderView(
      {
        ...base,
        prometheusUrl: "http://127.0.0.1:9090",
        models: [
          { name: "tiny-gpt2", ready: 2, desired: 2, inFlight: 3, requestsPerSecond: 4.25 },
          { name: "big", ready: 0, desired: 1, inFlight: 0, requestsPerSecond: 0 },
          { name: "idle", ready: 0, desired: 0, inFlight: 0, requestsPerSecond: 0 },
        ],
        lastEvent: {
          at: new Date(2026, 0, 1, 12, 3, 4).getTime(),
          model: "big",
          type: "replica-starting",
          message: "big-1 starting",
        },
      },
      200,
    );
    expect(lines[0]).toBe(
      "berth up   gateway http://127.0.0.1:8080   dashboard http://127.0.0.1:8080/   prometheus http://127.0.0.1:9090",
    );
    expect(lines[1]).toBe("MODEL      READY/DESIRED  IN-FLIGHT  REQ/S");
    expect(lines[2]).toBe("tiny-gpt2  2/2            3          4.3    ready");
    expect(lines[3]).toBe("big        0/1            0          0.0    starting");
    expect(lines[4]).toMatch(/^idle {7}0\/0 .*scaled to zero/);
    expect(lines[5]).toBe("last event  12:03:04  big  replica-starting: big-1 starting");
  });

  it("says why a model cannot serve, and cuts lines to the terminal's width", () => {
    const snapshot = {
      ...base,
      models: [
        {
          name: "m",
          ready: 0,
          desired: 1,
          inFlight: 0,
          requestsPerSecond: 0,
          unavailableReason: "crash-looping",
        },
      ],
    };
    expect(renderView(snapshot, 120)[2]).toBe(
      "m      0/1            0          0.0    UNAVAILABLE: crash-looping",
    );
    const narrow = renderView(snapshot, 40);
    expect(narrow.every((line) => line.length <= 40)).toBe(true);
    expect(narrow[0]?.endsWith("…")).toBe(true);
    expect(narrow.at(-2)).toBe("last event  none yet");
  });
});

describe("formatLogLine", () => {
  const time = new Date(2026, 0, 1, 9, 8, 7).getTime();

  it("turns a JSON line into time, level, model/replica, message and the other fields", () => {
    const line = JSON.stringify({
      level: 30,
      time,
      pid: 1,
      hostname: "h",
      model: "tiny",
      replica: "tiny-1",
      msg: "replica ready",
      url: "http://x",
      startMs: 10,
    });
    expect(formatLogLine(line)).toBe("09:08:07  INFO   tiny/tiny-1  replica ready  url=http://x  startMs=10");
  });

  it("puts an error's message in words, and the next step for a crash loop", () => {
    const error = JSON.stringify({
      level: 50,
      time,
      msg: "generation failed",
      err: { type: "Error", message: "out of memory", stack: "…" },
    });
    expect(formatLogLine(error)).toBe("09:08:07  ERROR  berth  generation failed: out of memory");
    const crash = JSON.stringify({
      level: 30,
      time,
      model: "tiny",
      event: "replica-crash-looping",
      msg: "tiny-1 keeps exiting",
    });
    expect(formatLogLine(crash)).toContain("\n           next: berth logs tiny");
  });

  it("passes a line that is not JSON through as it is", () => {
    expect(formatLogLine("plain words\n")).toBe("plain words");
    expect(formatLogLine("\n")).toBeUndefined();
  });
});
