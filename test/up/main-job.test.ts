// The main job (`npm start`): examples/local/berth.yaml comes up with two replicas of the tiny
// model, serves the OpenAI API and the seed's /generate through the gateway, and `berth down`
// stops it with nothing left behind.

import { readFileSync, writeFileSync } from "node:fs";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alive, type BerthUp, startBerthUp, waitFor } from "./harness.js";

describe.sequential("berth up -f examples/local/berth.yaml", () => {
  let up: BerthUp;

  beforeAll(async () => {
    up = await startBerthUp(readFileSync("examples/local/berth.yaml", "utf8"), ["--watch"]);
  }, 180_000);

  afterAll(async () => {
    await up?.cleanup();
  }, 120_000);

  it("starts two replicas, autoscaled 1..4, and serves the OpenAI API and /generate", async () => {
    await waitFor(
      "the ready line",
      async () => (up.stdout().includes("tiny-gpt2 ready (2 replicas)") ? true : undefined),
      120_000,
    );
    const status = await up.status();
    expect(status.models[0]).toMatchObject({ name: "tiny-gpt2", min: 1, max: 4, ready: 2 });

    const client = new OpenAI({ baseURL: `${up.url}/v1`, apiKey: "unused-on-loopback", maxRetries: 0 });
    const chat = await client.chat.completions.create({
      model: "tiny-gpt2",
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: 8,
    });
    expect(chat.choices[0]?.message.content?.length).toBeGreaterThan(0);

    const form = new FormData();
    form.set("text", "Hello");
    const generated = await fetch(`${up.url}/generate`, { method: "POST", body: form });
    expect(generated.status).toBe(200);
    const body = (await generated.json()) as { generated_text?: string };
    expect(body.generated_text?.startsWith("Hello")).toBe(true);

    const metrics = await (await fetch(`${up.url}/metrics`)).text();
    expect(metrics).toContain('berth_autoscaler_desired_replicas{model="tiny-gpt2"} 2');
  });

  it("refuses a second berth up for the same BERTH_HOME", async () => {
    const second = await up.berth(["up", "-f", up.specPath, "--port", "0"]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain("berth up is already running");
  });

  it("with --watch, rolls out an edited spec file and ignores a broken one", async () => {
    const original = readFileSync(up.specPath, "utf8");
    writeFileSync(up.specPath, original.replace("parallel: 8", "parallel: [8]"));
    await waitFor("the broken edit to be reported", async () =>
      up.stderr().includes("spec change not applied") ? true : undefined,
    );
    expect((await up.status()).models[0]?.generation).toBe(1);

    writeFileSync(up.specPath, original.replace("parallel: 8", "parallel: 4"));
    const rolled = await up.waitForStatus(
      "both replicas at generation 2",
      (status) =>
        status.models[0]?.generation === 2 &&
        status.models[0].replicas.length === 2 &&
        status.models[0].replicas.every((replica) => replica.generation === 2 && replica.state === "ready"),
      150_000,
    );
    expect(rolled.models[0]?.ready).toBe(2);
  });

  it("stops on berth down", async () => {
    const pids = [...up.seenPids];
    const down = await up.berth(["down"]);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/stopped/);
    const code = await waitFor("berth up to exit", async () => up.child.exitCode ?? undefined, 10_000);
    expect(code).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
  });
});
