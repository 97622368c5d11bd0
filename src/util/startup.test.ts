import { expect, test } from "vitest";
import { processCpuMs, STARTUP_CARRY_ENV, StartupClock } from "./startup.js";

test("phases end in order, take their wall and CPU time since the previous mark", () => {
  const clock = new StartupClock({});
  clock.mark("first");
  const spinUntil = performance.now() + 20;
  while (performance.now() < spinUntil) {
    // burn CPU so that the phase has some
  }
  clock.mark("second");
  const report = clock.report();
  expect(report.relaunched).toBe(false);
  expect(report.phases.map((phase) => phase.phase)).toEqual(["node-boot", "first", "second"]);
  const second = report.phases[2]!;
  expect(second.ms).toBeGreaterThanOrEqual(19);
  expect(second.cpuMs).toBeGreaterThan(0);
  expect(second.atMs).toBeGreaterThan(report.phases[1]!.atMs);
  expect(report.totalMs).toBe(second.atMs);
});

test("a relaunched child continues the parent's clock, with the relaunch as a phase", () => {
  const parent = new StartupClock({});
  parent.mark("cli");
  const child = new StartupClock(parent.carry());
  child.mark("ready");
  const report = child.report();
  expect(report.relaunched).toBe(true);
  expect(report.phases.map((phase) => phase.phase)).toEqual([
    "node-boot",
    "cli",
    "relaunch",
    "node-boot",
    "ready",
  ]);
  // (In one process the "child" starts before the parent's last mark, so only the names are checked;
  // test/server/cold-start.test.ts runs real processes.)
});

test("a malformed carry is ignored, not trusted", () => {
  expect(new StartupClock({ [STARTUP_CARRY_ENV]: "{not json" }).relaunched).toBe(false);
  expect(new StartupClock({ [STARTUP_CARRY_ENV]: '{"origin":"x","phases":[]}' }).relaunched).toBe(false);
});

test("process CPU time grows", () => {
  const before = processCpuMs();
  const spinUntil = performance.now() + 20;
  while (performance.now() < spinUntil) {
    // burn CPU
  }
  expect(processCpuMs()).toBeGreaterThan(before);
});
