// What people and log pipelines see of a real `berth up`:
// - on a terminal (a real pty, from `script`): the live view with the gateway URL and replicas ready;
// - piped: JSON lines; with --log-format ecs: Elastic Common Schema lines;
// - one request's x-request-id and W3C trace id in the gateway's log line and the replica's.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type BerthUp, prepareHome, specText, startBerthUp, waitFor } from "./harness.js";

const BERTH = join(process.cwd(), "bin", "berth.js");
const SCRIPT = "/usr/bin/script";
const SPEC = specText({ name: "tiny", replicas: "{ min: 1, max: 1 }" });

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split("\n")
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

// CSI sequences (cursor moves, colours, scroll region) and the save/restore-cursor pair.
// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g;

describe.skipIf(!existsSync(SCRIPT))("berth up on a terminal", () => {
  let child: ChildProcess | undefined;
  let home: string | undefined;

  afterAll(async () => {
    if (child?.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it("shows the gateway and dashboard URL and the replicas ready in a live view, and stops on Ctrl-C", async () => {
    home = await prepareHome();
    const specPath = join(home, "berth.yaml");
    writeFileSync(specPath, SPEC);
    // `script` gives berth up a real pseudo-terminal of 120x30; its output is what a person would see.
    const command = `stty cols 120 rows 30; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(BERTH)} up -f ${JSON.stringify(specPath)} --port 0`;
    child = spawn(SCRIPT, ["-qfec", command, "/dev/null"], {
      env: { ...process.env, BERTH_HOME: home },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    let screen = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      screen += chunk;
    });
    // "close": after the exit and the last output (the stop message) have arrived.
    const exited = new Promise<number | null>((resolve) => child?.once("close", (code) => resolve(code)));
    const plain = (): string => screen.replace(ANSI, "");
    await waitFor(
      "the live view to show 1/1 ready",
      async () => (/tiny\s+1\/1\s+\d+\s+[\d.]+\s+ready/.test(plain()) ? true : undefined),
      120_000,
      200,
    );
    const text = plain();
    expect(text).toMatch(/gateway http:\/\/127\.0\.0\.1:\d+ {3}dashboard http:\/\/127\.0\.0\.1:\d+\//);
    expect(text).toContain("MODEL  READY/DESIRED  IN-FLIGHT  REQ/S");
    expect(text).toMatch(/last event {2}\d\d:\d\d:\d\d {2}tiny {2}replica-/);
    // Human log lines, not JSON: time, level, who, message.
    expect(text).toMatch(/\d\d:\d\d:\d\d {2}INFO {3}tiny {2}tiny-\w+ ready on http/);
    expect(text).not.toMatch(/\{"level":/);
    // The scroll region keeps log lines below the view.
    expect(screen).toMatch(new RegExp(`${"\u001b"}\\[\\d+;30r`));

    // Ctrl-C typed at the terminal: the pty turns it into SIGINT for berth up.
    child.stdin?.write("\u0003");
    const code = await Promise.race([
      exited,
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 60_000).unref()),
    ]);
    expect(code).toBe(0);
    expect(plain()).toContain("berth up: stopped");
  });
});

describe("berth up piped: JSON lines", () => {
  let up: BerthUp | undefined;
  afterAll(async () => {
    await up?.cleanup();
  });

  it("writes JSON lines when stdout is not a terminal (npm start | cat)", async () => {
    up = await startBerthUp(SPEC);
    await up.waitForStatus("the replica ready", (status) => status.models[0]?.ready === 1);
    expect(up.stdout()).toContain("berth up: gateway on http://");
    const lines = jsonLines(up.stderr());
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) {
      expect(line).toHaveProperty("level");
      expect(line).toHaveProperty("time");
      expect(line).toHaveProperty("msg");
    }
  });

  it("follows live: berth status --watch and berth events -f print until Ctrl-C", async () => {
    const current = up as BerthUp;
    const follow = (args: string[]) => {
      const child = spawn(process.execPath, [BERTH, ...args], {
        env: { ...process.env, BERTH_HOME: current.home },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
      });
      const closed = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
      return { child, out: () => out, closed };
    };

    const watch = follow(["status", "--watch", "--json", "--interval", "0.2"]);
    const snapshots = await waitFor("two status snapshots", async () => {
      const lines = watch
        .out()
        .split("\n")
        .filter((line) => line.startsWith("{"));
      return lines.length >= 2
        ? lines.map((line) => JSON.parse(line) as { models: Array<{ ready: number }> })
        : undefined;
    });
    expect(snapshots[0]?.models[0]?.ready).toBe(1);
    watch.child.kill("SIGINT");
    expect(await watch.closed).toBe(0);

    const events = follow(["events", "-f", "--json"]);
    await waitFor("the past events", async () =>
      events.out().includes('"replica-ready"') ? true : undefined,
    );
    const scaled = await current.berth(["scale", "tiny", "1"]);
    expect(scaled.code, scaled.stderr).toBe(0);
    const manual = await waitFor("the new event to be followed", async () =>
      events
        .out()
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as { seq: number; type: string })
        .find((event) => event.type === "scale-manual"),
    );
    expect(manual.seq).toBeGreaterThan(1);
    events.child.kill("SIGINT");
    expect(await events.closed).toBe(0);
  });
});

describe("berth up --log-format ecs, and one request followed through gateway and replica", () => {
  let up: BerthUp | undefined;
  afterAll(async () => {
    await up?.cleanup();
  });

  it("writes ECS lines and carries x-request-id and the trace id into the gateway's and the replica's log line", async () => {
    up = await startBerthUp(SPEC, ["--log-format", "ecs"]);
    await up.waitForStatus("the replica ready", (status) => status.models[0]?.ready === 1);
    const current = up;

    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const callerSpan = "00f067aa0ba902b7";
    const requestId = `e7-trace-test-${Date.now()}`;
    const response = await fetch(`${current.url}/v1/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-request-id": requestId,
        traceparent: `00-${traceId}-${callerSpan}-01`,
      },
      body: JSON.stringify({ model: "tiny", prompt: "Hello", max_tokens: 2 }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toBe(requestId);

    // The gateway's line, in ECS: the request id, the caller's trace, a span of the gateway's own.
    const gatewayLine = await waitFor("the gateway's log line of the request", async () =>
      jsonLines(current.stderr()).find((line) => line.reqId === requestId),
    );
    expect(gatewayLine).toMatchObject({
      "log.level": "info",
      "ecs.version": expect.any(String),
      "@timestamp": expect.any(String),
      message: "request",
      trace: { id: traceId },
      status: 200,
    });
    const gatewaySpan = (gatewayLine.span as { id: string }).id;
    expect(gatewaySpan).toMatch(/^[0-9a-f]{16}$/);
    expect(gatewaySpan).not.toBe(callerSpan);

    // The replica's line (its log through `berth logs`): the same request id and trace id.
    const replicaLine = await waitFor("the replica's log line of the request", async () => {
      const logs = await current.berth(["logs", "tiny", "--tail", "200"]);
      const lines = logs.stdout
        .split("\n")
        .map((line) => line.replace(/^\[[^\]]+\] /, ""))
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      return lines.find((line) => line.reqId === requestId && line.message === "request completed");
    });
    // The replicas of an ECS berth up write ECS as well.
    expect(replicaLine).toMatchObject({
      "ecs.version": expect.any(String),
      trace: { id: traceId },
      status: 200,
    });
    expect((replicaLine.span as { id: string }).id).not.toBe(gatewaySpan);

    // Without a traceparent, the gateway starts a trace and the replica logs the same one.
    const plainId = `e7-no-trace-${Date.now()}`;
    await fetch(`${current.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": plainId },
      body: JSON.stringify({ model: "tiny", prompt: "Hi", max_tokens: 2 }),
    });
    const started = await waitFor("the gateway's line of the second request", async () =>
      jsonLines(current.stderr()).find((line) => line.reqId === plainId),
    );
    const startedTrace = (started.trace as { id: string }).id;
    expect(startedTrace).toMatch(/^[0-9a-f]{32}$/);
    const logs = await current.berth(["logs", "tiny", "--tail", "200"]);
    expect(logs.stdout).toContain(`"reqId":"${plainId}"`);
    expect(logs.stdout).toContain(`"trace":{"id":"${startedTrace}"}`);
  });
});
