import { describe, expect, it } from "vitest";
import { formatTraceparent, parseTraceparent, traceContextFor } from "./trace.js";

const fixed = (bytes: number) => "ab".repeat(bytes);

describe("traceparent", () => {
  it("continues a caller's trace with a span of its own", () => {
    const context = traceContextFor("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", fixed);
    expect(context).toEqual({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "abababababababab",
      parentSpanId: "b7ad6b7169203331",
      flags: "01",
    });
    expect(formatTraceparent(context)).toBe("00-0af7651916cd43dd8448eb211c80319c-abababababababab-01");
  });

  it("starts a sampled trace when there is none or it is malformed", () => {
    for (const header of [
      undefined,
      "",
      "garbage",
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
    ]) {
      expect(parseTraceparent(header), String(header)).toBeUndefined();
      expect(traceContextFor(header, fixed)).toEqual({
        traceId: "ab".repeat(16),
        spanId: "ab".repeat(8),
        flags: "01",
      });
    }
  });

  it("accepts a future version with more fields, and upper case", () => {
    expect(parseTraceparent("01-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-00-more")).toEqual({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      parentSpanId: "b7ad6b7169203331",
      flags: "00",
    });
  });
});
