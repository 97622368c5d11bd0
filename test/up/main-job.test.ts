// The main job (`npm start`): examples/local/berth.yaml comes up with two replicas of the demo
// model (its checkpoint folder converted on first use), serves the OpenAI API and the seed's
// /generate through the gateway with English-like text, and `berth down` stops it with nothing left.

import { readFileSync, writeFileSync } from "node:fs";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_MODEL_DIR, trainingWordShare } from "../support/demo-model.js";
import { alive, type BerthUp, startBerthUp, waitFor } from "./harness.js";

// The harness writes the spec into a home of its own, so the folder is given as an absolute path.
const SPEC = readFileSync("examples/local/berth.yaml", "utf8").replace(
  "source: ../demo-model",
  `source: ${DEMO_MODEL_DIR}`,
);

describe.sequential("berth up -f examples/local/berth.yaml", () => {
  let up: BerthUp;

  beforeAll(async () => {
    expect(SPEC).toContain(`source: ${DEMO_MODEL_DIR}`);
    up = await startBerthUp(SPEC, ["--watch"]);
  }, 180_000);

  afterAll(async () => {
    await up?.cleanup();
  }, 120_000);

  it("starts two replicas, autoscaled 1..4, and serves English-like text on the OpenAI API and /generate", async () => {
    await waitFor(
      "the ready line",
      async () => (up.stdout().includes("kjv-demo ready (2 replicas)") ? true : undefined),
      120_000,
    );
    const status = await up.status();
    expect(status.models[0]).toMatchObject({ name: "kjv-demo", min: 1, max: 4, ready: 2 });

    const client = new OpenAI({ baseURL: `${up.url}/v1`, apiKey: "unused-on-loopback", maxRetries: 0 });
    const chat = await client.chat.completions.create({
      model: "kjv-demo",
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
    // The seed's default max_length (50 tokens) of the demo model's text: mostly words it read.
    const answer = trainingWordShare(body.generated_text?.slice("Hello".length) ?? "");
    expect(answer.words.length, body.generated_text).toBeGreaterThanOrEqual(20);
    expect(
      answer.share,
      `${body.generated_text}\nunknown: ${answer.unknown.join(", ")}`,
    ).toBeGreaterThanOrEqual(0.9);

    const metrics = await (await fetch(`${up.url}/metrics`)).text();
    expect(metrics).toContain('berth_autoscaler_desired_replicas{model="kjv-demo"} 2');
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
    // The rollout replaces both replicas; the idle autoscaler may then (or meanwhile) go down to
    // min 1 after scaleDownDelay, so what must hold is: every replica left runs generation 2.
    const rolled = await up.waitForStatus(
      "every replica at generation 2",
      (status) =>
        status.models[0]?.generation === 2 &&
        status.models[0].replicas.length >= 1 &&
        status.models[0].replicas.every((replica) => replica.generation === 2 && replica.state === "ready"),
      150_000,
    );
    expect(rolled.models[0]?.ready).toBeGreaterThanOrEqual(1);
    const events = JSON.parse((await up.berth(["events", "--json"])).stdout) as Array<{ type: string }>;
    expect(events.map((event) => event.type)).toContain("rollout-finished");
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
