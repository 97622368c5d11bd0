import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, ecsSafeFields, resolveLogFormat } from "./log.js";

function capture(format: "json" | "ecs" | "pretty"): {
  lines: () => string[];
  logger: ReturnType<typeof createLogger>;
} {
  let text = "";
  const sink = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return {
    lines: () => text.split("\n").filter((line) => line.length > 0),
    logger: createLogger({}, sink, format),
  };
}

describe("log formats", () => {
  it("auto is human lines on a terminal and JSON elsewhere; unknown formats are refused", () => {
    expect(resolveLogFormat("auto", true)).toBe("pretty");
    expect(resolveLogFormat("auto", false)).toBe("json");
    expect(resolveLogFormat("ecs", true)).toBe("ecs");
    expect(resolveLogFormat("xml", false)).toBeUndefined();
  });

  it("writes ECS that Elasticsearch can map: object fields stay objects, secrets stay redacted", () => {
    const { logger, lines } = capture("ecs");
    logger.info(
      {
        url: "http://127.0.0.1:1",
        event: "replica-ready",
        file: "/s.yaml",
        source: "hf://a/b",
        authorization: "Bearer x",
      },
      "ready",
    );
    const line = JSON.parse(lines()[0] ?? "{}");
    expect(line).toMatchObject({
      "log.level": "info",
      "ecs.version": expect.any(String),
      message: "ready",
      url: { full: "http://127.0.0.1:1" },
      event: { action: "replica-ready" },
      file: { path: "/s.yaml" },
      berth: { source: "hf://a/b" },
      authorization: "[redacted]",
    });
    expect(ecsSafeFields({ trace: { id: "t" }, model: "m" })).toEqual({ trace: { id: "t" }, model: "m" });
  });

  it("writes JSON lines, or human lines for pretty", () => {
    const json = capture("json");
    json.logger.info({ model: "m" }, "hello");
    expect(JSON.parse(json.lines()[0] ?? "{}")).toMatchObject({ level: 30, msg: "hello", model: "m" });
    const pretty = capture("pretty");
    pretty.logger.warn({ model: "m", replica: "m-1", status: 503 }, "request failed");
    expect(pretty.lines()[0]).toMatch(/^\d\d:\d\d:\d\d {2}WARN {3}m\/m-1 {2}request failed {2}status=503$/);
  });
});
