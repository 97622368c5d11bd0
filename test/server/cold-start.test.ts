// Cold start of a real `berth serve` (node bin/berth.js): started without UV_THREADPOOL_SIZE, as a
// shell or an image without ENV starts it, it serves from the process that was spawned (no relaunch)
// and its ready line reports every startup phase. Timings are reported, never asserted.
import { afterEach, expect, test } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { type ServeProcess, startServe } from "../support/serve-process.js";

let serve: ServeProcess | undefined;
afterEach(() => {
  serve?.kill();
  serve = undefined;
});

interface Phase {
  phase: string;
  atMs: number;
  ms: number;
  cpuMs: number;
}

test("without UV_THREADPOOL_SIZE, serve runs in the spawned process and reports its startup phases", async () => {
  const modelPath = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
  const { UV_THREADPOOL_SIZE: _, ...env } = process.env;
  serve = await startServe(["--model", modelPath, "--parallel", "1", "--threads", "1"], { env });
  const ready = serve.logLines.find((line) => line.msg === "ready");
  // The process that answers is the one spawned: bin/berth.js sized the thread pool, no relaunch.
  expect(ready?.pid).toBe(serve.child.pid);
  const startup = ready?.startup as { relaunched: boolean; phases: Phase[]; cpuMs: number; totalMs: number };
  expect(startup.relaunched).toBe(false);
  const names = startup.phases.map((phase) => phase.phase);
  for (const name of [
    "node-boot",
    "cli",
    "model-check",
    "server-imports",
    "listening",
    "engine-binary",
    "model-load",
    "context",
    "ready",
  ])
    expect(names).toContain(name);
  expect(names.at(-1)).toBe("ready");
  // Marks are on one monotonic timeline, and every phase used some CPU or none, never less.
  const at = startup.phases.map((phase) => phase.atMs);
  expect([...at].sort((a, b) => a - b)).toEqual(at);
  for (const phase of startup.phases) expect(phase.cpuMs).toBeGreaterThanOrEqual(0);
  expect(startup.totalMs).toBe(at.at(-1));
  expect(startup.cpuMs).toBeGreaterThan(0);
  // And it serves.
  const answer = await fetch(`${serve.url}/v1/models`);
  expect(answer.status).toBe(200);
}, 240_000);
