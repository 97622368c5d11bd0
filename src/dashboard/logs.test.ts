// The console's log line formatting (a browser module; this function touches no DOM): pino and
// ECS JSON lines become "time level message {rest}", anything else stays as it is.
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain browser script module without types.
import { formatLine } from "./logs.js";

const AT = Date.UTC(2026, 0, 2, 3, 4, 5);
const clock = new Date(AT).toLocaleTimeString();

describe("formatLine", () => {
  it.each([
    [
      JSON.stringify({ level: 30, time: AT, pid: 1, hostname: "h", msg: "ready", url: "http://x" }),
      `${clock} info ready {"url":"http://x"}`,
    ],
    [JSON.stringify({ level: 50, time: AT, msg: "boom" }), `${clock} error boom`],
    [
      JSON.stringify({ "@timestamp": new Date(AT).toISOString(), "log.level": "warn", message: "slow" }),
      `${clock} warn slow`,
    ],
    ["--- berth: tiny-1 attempt 1", "--- berth: tiny-1 attempt 1"],
    ["[1,2]", "[1,2]"],
    ["null", "null"],
    ['<script>alert("x")</script>', '<script>alert("x")</script>'],
  ])("%s → %s", (line, shown) => {
    expect(formatLine(line)).toBe(shown);
  });
});
