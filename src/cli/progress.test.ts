// The shared progress renderer: a bar with rate and ETA on a terminal, plain lines otherwise.
import { afterEach, describe, expect, test, vi } from "vitest";
import { createProgress, formatEta } from "./progress.js";

function sink(isTTY: boolean): {
  text: () => string;
  stream: { write(t: string): boolean; isTTY: boolean; columns: number };
} {
  let out = "";
  return {
    text: () => out,
    stream: {
      isTTY,
      columns: 200,
      write(t: string) {
        out += t;
        return true;
      },
    },
  };
}

afterEach(() => vi.useRealTimers());

describe("createProgress", () => {
  test("a terminal gets a redrawn bar with bytes, rate and ETA", () => {
    vi.useFakeTimers({ now: 0 });
    const { text, stream } = sink(true);
    const progress = createProgress({ stream, unit: "bytes", title: "pull hf://o/r:Q8_0" });
    progress.update("m-Q8_0.gguf", 0, 100 * 1024 * 1024);
    vi.setSystemTime(1000);
    progress.update("m-Q8_0.gguf", 10 * 1024 * 1024, 100 * 1024 * 1024);
    progress.finish();
    const last = text().split("\r").at(-1) ?? "";
    expect(last).toMatch(/\[##.*\]\s+10% 10\.0 MiB\/100\.0 MiB, 10\.0 MiB\/s, ETA 0:09 m-Q8_0\.gguf/);
    expect(text().endsWith("\n")).toBe(true);
  });

  test("a pipe gets plain lines per tenth, never carriage returns", () => {
    vi.useFakeTimers({ now: 0 });
    const { text, stream } = sink(false);
    const progress = createProgress({ stream, unit: "bytes" });
    for (let i = 0; i <= 100; i++) {
      vi.setSystemTime(i * 100);
      progress.update("f", i * 1024, 100 * 1024);
    }
    progress.finish("done");
    const lines = text().trim().split("\n");
    expect(lines).toHaveLength(12);
    expect(text()).not.toContain("\r");
    expect(lines[5]).toMatch(/^50% of 100\.0 KiB, 10\.0 KiB\/s, ETA 0:05 f$/);
  });

  test("formatEta", () => {
    expect(formatEta(65)).toBe("1:05");
    expect(formatEta(3723)).toBe("1:02:03");
    expect(formatEta(Number.POSITIVE_INFINITY)).toBe("--:--");
  });
});
