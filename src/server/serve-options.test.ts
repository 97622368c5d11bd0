// `berth serve` flag parsing: defaults as commander passes them, durations, sizes, and errors naming the flag.
import { describe, expect, it } from "vitest";
import { parseServeOptions, type RawServeOptions } from "./serve-options.js";

const defaults: RawServeOptions = {
  model: "m.gguf",
  host: "127.0.0.1",
  port: "9000",
  parallel: "8",
  gracePeriod: "30s",
  requestTimeout: "120s",
  bodyLimit: "1Mi",
};

describe("parseServeOptions", () => {
  it("turns the defaults into settings", () => {
    expect(parseServeOptions(defaults)).toEqual({
      ok: true,
      settings: {
        modelPath: "m.gguf",
        host: "127.0.0.1",
        port: 9000,
        parallel: 8,
        contextPerSequence: undefined,
        threads: undefined,
        modelId: undefined,
        maxQueue: undefined,
        gracePeriodMs: 30_000,
        requestTimeoutMs: 120_000,
        bodyLimitBytes: 1024 * 1024,
        logPrompts: false,
        prefixReuse: true,
      },
    });
  });

  it("turns --no-prefix-reuse (commander: prefixReuse false) into settings", () => {
    const parsed = parseServeOptions({ ...defaults, prefixReuse: false });
    expect(parsed.ok && parsed.settings.prefixReuse).toBe(false);
  });

  it("accepts port 0, a queue of 0, and durations in several units", () => {
    const parsed = parseServeOptions({
      ...defaults,
      port: "0",
      maxQueue: "0",
      gracePeriod: "1m30s",
      ctx: "512",
    });
    expect(parsed.ok && parsed.settings).toMatchObject({
      port: 0,
      maxQueue: 0,
      gracePeriodMs: 90_000,
      contextPerSequence: 512,
    });
  });

  it.each([
    [{ port: "70000" }, "--port must be at most 65535"],
    [{ port: "-1" }, "--port must be a whole number"],
    [{ parallel: "0" }, "--parallel must be at least 1"],
    [{ gracePeriod: "soon" }, "--grace-period must be a duration"],
    [{ bodyLimit: "lots" }, "--body-limit must be a size"],
    [{ modelId: "has space" }, "--model-id may use"],
  ])("refuses %j", (override, message) => {
    const parsed = parseServeOptions({ ...defaults, ...override });
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.message).toContain(message);
  });
});
