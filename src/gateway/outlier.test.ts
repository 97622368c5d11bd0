import { describe, expect, it } from "vitest";
import { OutlierDetector } from "./outlier.js";

describe("OutlierDetector", () => {
  it("ejects for the base time, doubling with each ejection in a row up to the cap", () => {
    const detector = new OutlierDetector({ baseEjectionMs: 1_000, maxEjectionMs: 5_000 });
    const untils = [0, 10_000, 20_000, 30_000, 40_000].map(
      (now) => detector.eject("r1", now, "refused") - now,
    );
    expect(untils).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it("is ejected only until the end of the ejection", () => {
    const detector = new OutlierDetector({ baseEjectionMs: 1_000, maxEjectionMs: 5_000 });
    detector.eject("r1", 100, "hung");
    expect([99, 100, 1_099, 1_100].map((now) => detector.isEjected("r1", now))).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(detector.isEjected("r2", 100)).toBe(false);
  });

  it("ends the streak and a refusal or hang ejection on success", () => {
    const detector = new OutlierDetector({ baseEjectionMs: 1_000, maxEjectionMs: 60_000 });
    detector.eject("r1", 0, "hung");
    detector.eject("r1", 2_000, "hung");
    detector.recordSuccess("r1", 2_500);
    expect(detector.isEjected("r1", 2_500)).toBe(false);
    expect(detector.eject("r1", 3_000, "refused")).toBe(4_000);
  });

  it("keeps a draining ejection through successes of requests that started before", () => {
    const detector = new OutlierDetector({ baseEjectionMs: 1_000, maxEjectionMs: 60_000 });
    detector.eject("r1", 0, "draining", 2_000);
    detector.recordSuccess("r1", 500);
    expect(detector.isEjected("r1", 1_500)).toBe(true);
    expect(detector.ejection("r1")).toMatchObject({ reason: "draining", until: 2_000 });
  });

  it("never shortens an ejection in progress", () => {
    const detector = new OutlierDetector({ baseEjectionMs: 10_000, maxEjectionMs: 60_000 });
    detector.eject("r1", 0, "hung");
    expect(detector.eject("r1", 1_000, "draining", 500)).toBe(10_000);
  });

  it("forgets upstreams that left", () => {
    const detector = new OutlierDetector({ baseEjectionMs: 1_000, maxEjectionMs: 5_000 });
    detector.eject("gone", 0, "refused");
    detector.eject("kept", 0, "refused");
    detector.retainOnly(new Set(["kept"]));
    expect(detector.ejection("gone")).toBeUndefined();
    expect(detector.isEjected("kept", 1)).toBe(true);
  });
});
