// Acceptance 1, 2 and 8 of `berth up` with real processes: a replica SIGKILLed under load (zero
// failed requests, replaced), a rolling update under load (zero failed, new replicas run the new
// spec), the day-two commands, and SIGTERM leaving no process behind.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { controllerEventSchema } from "../../src/control/admin-protocol.js";
import { alive, type BerthUp, runLoad, specText, startBerthUp, waitFor } from "./harness.js";

const SPEC = specText({ replicas: "{ min: 2, max: 2 }", parallel: 2, contextSize: 256 });

describe.sequential("berth up: replicas under load", () => {
  let up: BerthUp;

  beforeAll(async () => {
    up = await startBerthUp(SPEC);
    await up.waitForStatus("two ready replicas", (status) => status.models[0]?.ready === 2);
  }, 180_000);

  afterAll(async () => {
    await up?.cleanup();
  }, 120_000);

  it("serves 200 requests with zero failures while a replica is SIGKILLed, and replaces it", async () => {
    const before = await up.status();
    const victim = before.models[0]?.replicas[0];
    if (!victim?.pid) throw new Error("no replica to kill");
    let killedAt = 0;
    const result = await runLoad({
      url: up.url,
      model: "tiny",
      total: 200,
      concurrency: 4,
      onCompleted: (completed) => {
        if (completed === 50 && killedAt === 0) {
          process.kill(victim.pid as number, "SIGKILL");
          killedAt = Date.now();
        }
      },
    });
    expect(killedAt).toBeGreaterThan(0);
    expect(result).toEqual({ ok: 200, failed: 0, errors: [] });

    const after = await up.waitForStatus("the killed replica to be ready again", (status) => {
      const replica = status.models[0]?.replicas.find((candidate) => candidate.id === victim.id);
      return replica?.state === "ready" && replica.pid !== victim.pid;
    });
    const replaced = after.models[0]?.replicas.find((candidate) => candidate.id === victim.id);
    expect(replaced?.restarts).toBe(1);
    expect(alive(victim.pid)).toBe(false);
    expect(after.models[0]?.ready).toBe(2);

    const events = await eventsOf(up);
    const readyAgain = events.find(
      (event) =>
        event.type === "replica-ready" && event.message.startsWith(victim.id) && event.at >= killedAt,
    );
    expect(
      events.some((event) => event.type === "replica-restarting" && event.message.startsWith(victim.id)),
    ).toBe(true);
    console.log(`replica ${victim.id} SIGKILLed: ready again after ${(readyAgain?.at ?? 0) - killedAt} ms`);
  });

  it("rolls out a spec change under load with zero failures, and the new replicas run the new spec", async () => {
    const before = await up.status();
    const oldPids = before.models[0]?.replicas.map((replica) => replica.pid) ?? [];
    const changed = join(up.home, "changed.yaml");
    writeFileSync(changed, specText({ replicas: "{ min: 2, max: 2 }", parallel: 3, contextSize: 512 }));

    let rolledOut = false;
    let applied: Promise<{ code: number; stdout: string; stderr: string }> | undefined;
    const watchRollout = (async () => {
      await waitFor("apply to be sent", async () => applied);
      await up.waitForStatus(
        "every replica at generation 2",
        (status) => {
          const model = status.models[0];
          return (
            model?.generation === 2 &&
            model.ready === 2 &&
            model.replicas.length === 2 &&
            model.replicas.every((replica) => replica.generation === 2 && replica.state === "ready")
          );
        },
        150_000,
      );
      rolledOut = true;
    })();
    const result = await runLoad({
      url: up.url,
      model: "tiny",
      total: 200,
      concurrency: 4,
      // Keep the load on until the rollout is over, however long it takes on a busy machine.
      until: () => rolledOut,
      maxTotal: 5000,
      onCompleted: (completed) => {
        if (completed === 20) applied = up.berth(["apply", "-f", changed]);
      },
    });
    await watchRollout;
    const apply = await applied;
    expect(apply?.code, apply?.stderr).toBe(0);
    expect(apply?.stdout).toContain("updated: tiny");
    expect(result.failed, result.errors.join("\n")).toBe(0);
    expect(result.ok).toBeGreaterThanOrEqual(200);

    for (const pid of oldPids) if (pid) expect(alive(pid)).toBe(false);
    // The new replicas said what they run in their ready line: 3 slots of 512 tokens.
    const after = await up.status();
    const logs = await up.berth(["logs", "tiny", "--tail", "400"]);
    expect(logs.code, logs.stderr).toBe(0);
    for (const replica of after.models[0]?.replicas ?? []) {
      const readyLine = logs.stdout
        .split("\n")
        .filter((line) => line.startsWith(`[${replica.id}]`) && line.includes('"msg":"ready"'))
        .at(-1);
      expect(readyLine, `ready line of ${replica.id}`).toContain('"slots":3');
      expect(readyLine).toContain('"contextPerSequence":512');
    }
    const events = await eventsOf(up);
    expect(events.map((event) => event.type)).toEqual(
      expect.arrayContaining(["rollout-started", "rollout-finished"]),
    );
    console.log(`rolling update under load: ${result.ok} requests, 0 failed`);
  });

  it("answers status, scale, events and logs", async () => {
    const text = await up.berth(["status"]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/tiny\s+tiny\s+2\s+2\s+2\s+2\s+2\.\.2/);

    // `logs -f` follows replicas that appear after it started, too.
    const existing = new Set((await up.status()).models[0]?.replicas.map((replica) => replica.id));
    const follow = spawn(process.execPath, ["bin/berth.js", "logs", "tiny", "-f", "--tail", "0"], {
      env: { ...process.env, BERTH_HOME: up.home },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let followed = "";
    follow.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      followed += chunk;
    });
    const scaled = await up.berth(["scale", "tiny", "3"]);
    expect(scaled.code, scaled.stderr).toBe(0);
    const three = await up.waitForStatus("three ready replicas", (status) => status.models[0]?.ready === 3);
    expect(three.models[0]).toMatchObject({ manualFloor: 3, desired: 3, min: 3 });
    const added = three.models[0]?.replicas.find((replica) => !existing.has(replica.id));
    if (!added) throw new Error("no new replica");
    await waitFor("the new replica's ready line in the followed logs", async () =>
      followed.split("\n").some((line) => line.startsWith(`[${added.id}] `) && line.includes('"msg":"ready"'))
        ? true
        : undefined,
    );
    follow.kill("SIGINT");
    const followExit = await new Promise<number | null>((resolve) =>
      follow.once("exit", (code) => resolve(code)),
    );
    expect(followExit).toBe(0);
    const auto = await up.berth(["scale", "tiny", "auto"]);
    expect(auto.code, auto.stderr).toBe(0);
    const two = await up.waitForStatus(
      "back to two replicas",
      (status) => status.models[0]?.replicas.length === 2,
    );
    expect(two.models[0]?.manualFloor).toBeUndefined();

    const unknown = await up.berth(["scale", "nope", "1"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no model "nope"');
    const bad = await up.berth(["scale", "tiny", "-1"]);
    expect(bad.code).toBe(2);

    const events = await up.berth(["events"]);
    expect(events.code, events.stderr).toBe(0);
    expect(events.stdout).toMatch(/tiny\s+scale-manual\s+manual floor set to 3/);

    const logs = await up.berth(["logs", "tiny", "--tail", "2"]);
    expect(logs.code, logs.stderr).toBe(0);
    const lines = logs.stdout.trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.every((line) => /^\[tiny-[0-9a-f]{6}\] /.test(line))).toBe(true);
  });

  it("drains and stops every replica on SIGTERM and leaves no process behind", async () => {
    const status = await up.status();
    const pids = [...up.seenPids];
    expect(pids.length).toBeGreaterThanOrEqual(status.models[0]?.replicas.length ?? 1);
    const code = await up.stop("SIGTERM");
    expect(code).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    expect(up.stdout()).toContain("berth up: stopped");
    const after = await up.berth(["status"]);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain("no berth up is running");
  });
});

async function eventsOf(up: BerthUp) {
  const result = await up.berth(["events", "--json"]);
  if (result.code !== 0) throw new Error(`berth events failed: ${result.stderr}`);
  return controllerEventSchema.array().parse(JSON.parse(result.stdout));
}
