// The local runtime with real `berth serve` processes, given a model file that is not a model (the
// injected fault): the replica keeps dying, is restarted with backoff, is reported crash-looping
// with its last log lines, and close() leaves no process behind.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseSpecText } from "../spec/index.js";
import { LocalRuntime, serveArguments } from "./local.js";
import type { LogLine, ObservedReplica } from "./types.js";

const [deployment] = parseSpecText(`apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: broken }
spec:
  model: { source: ./broken.gguf, contextSize: 256, servedName: broken-model }
  engine: { parallel: 2, threads: 1 }
`);

describe("LocalRuntime", () => {
  const directory = mkdtempSync(join(tmpdir(), "berth-runtime-"));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it("passes the spec to berth serve: loopback, a free port, slots, context, threads, name", () => {
    if (!deployment) throw new Error("no deployment");
    expect(serveArguments({ deployment, generation: 1, resolvedModel: "/m.gguf" })).toEqual([
      "serve",
      "--model",
      "/m.gguf",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--name",
      "broken-model",
      "--parallel",
      "2",
      "--ctx",
      "256",
      "--threads",
      "1",
    ]);
  });

  it("reports a replica that keeps crashing as crash-looping, with its last log lines", async () => {
    if (!deployment) throw new Error("no deployment");
    const modelPath = join(directory, "broken.gguf");
    writeFileSync(modelPath, "this is not a GGUF file\n".repeat(100));
    const runtime = new LocalRuntime({ stateDir: directory, backoffInitialMs: 100, crashLoopAfter: 3 });
    const seen: ObservedReplica[] = [];
    runtime.onChange((replica) => seen.push(replica));
    const started = await runtime.startReplica({ deployment, generation: 1, resolvedModel: modelPath });
    expect(started.state).toBe("starting");

    const deadline = Date.now() + 90_000;
    let replica = runtime.listReplicas()[0];
    while (!(replica?.state === "crash-looping" && replica.lastLogLines) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      replica = runtime.listReplicas()[0];
    }
    expect(replica?.state).toBe("crash-looping");
    expect(replica?.restarts).toBeGreaterThanOrEqual(3);
    expect(replica?.message).toMatch(/exited with code [1-9]/);
    expect(replica?.lastLogLines?.join("\n")).toMatch(/gguf|model|magic/i);
    // Restarted in place: the id stays, the states went through restarting before crash-looping.
    expect(seen.filter((change) => change.state === "restarting").length).toBeGreaterThanOrEqual(1);
    expect(new Set(seen.map((change) => change.id))).toEqual(new Set([started.id]));

    const lines: LogLine[] = [];
    for await (const line of runtime.logs("broken", { tailLines: 500 })) lines.push(line);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((line) => line.replicaId === started.id)).toBe(true);
    expect(
      lines.filter((line) => line.line.startsWith(`--- berth: ${started.id} attempt`)).length,
    ).toBeGreaterThanOrEqual(3);

    const pids = seen.map((change) => change.pid).filter((pid): pid is number => pid !== undefined);
    await runtime.close({ graceMs: 5000 });
    expect(runtime.listReplicas()).toEqual([]);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 120_000);
});
