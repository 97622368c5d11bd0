// Secrets stay with the gateway, through a real `berth up`: a replica's environment (read from
// /proc/PID/environ of the real process) holds no API key or credential, and with
// auth.protectMetrics the gateway's /metrics wants a key like the API does.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BerthUp, specText, startBerthUp } from "./harness.js";

const KEY = "sk-e2e-secret-5e1f0a9b7c3d";
const SECRETS = {
  BERTH_E2E_SECRET_KEYS: `ops ${KEY}`,
  HF_TOKEN: "hf_e2e_not_for_replicas_4b2c",
  AWS_SECRET_ACCESS_KEY: "aws-e2e-not-for-replicas-9d8e",
  E2E_DATABASE_PASSWORD: "pw-e2e-not-for-replicas-1a2b",
};

/** A process's environment and its children's (a replica may run its server in a child process). */
function environments(pid: number): Array<Record<string, string>> {
  const own = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, "utf8")
      .split("\0")
      .filter((entry) => entry.includes("="))
      .map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]),
  );
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // No children file (older kernels): the process's own environment is checked.
  }
  return [own, ...children.flatMap((child) => environments(child))];
}

describe.sequential("berth up: secrets", () => {
  let up: BerthUp;

  beforeAll(async () => {
    up = await startBerthUp(
      specText({
        name: "guarded",
        replicas: "{ min: 1, max: 1 }",
        extra: "  auth: { enabled: true, apiKeysFrom: env:BERTH_E2E_SECRET_KEYS, protectMetrics: true }\n",
      }),
      [],
      SECRETS,
    );
    await up.waitForStatus("the replica ready", (status) =>
      status.models.every((model) => model.ready === 1),
    );
  }, 180_000);

  afterAll(async () => {
    await up?.cleanup();
  }, 120_000);

  it("starts replicas without the API keys or any credential in their environment", async () => {
    const status = await up.status();
    const pid = status.models[0]?.replicas[0]?.pid;
    expect(pid).toBeGreaterThan(0);
    const seen = environments(pid!);
    expect(seen.length).toBeGreaterThan(0);
    for (const env of seen) {
      // What a replica needs is there...
      expect(env.PATH).toBeDefined();
      expect(env.BERTH_HOME).toBe(up.home);
      // ...and no secret, by name or by value.
      for (const [name, value] of Object.entries(SECRETS)) {
        expect(env[name]).toBeUndefined();
        expect(Object.values(env).some((found) => found.includes(value))).toBe(false);
      }
    }
    // The gateway itself still has the keys: the API answers with one.
    const answer = await fetch(`${up.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model: "guarded", prompt: "Hello", max_tokens: 2 }),
    });
    expect(answer.status).toBe(200);
  });

  it("puts /metrics behind the API keys when auth.protectMetrics is true", async () => {
    const open = await fetch(`${up.url}/metrics`);
    expect(open.status).toBe(401);
    expect(((await open.json()) as { error: { code: string } }).error.code).toBe("BERTH_UNAUTHORIZED");
    const wrong = await fetch(`${up.url}/metrics`, { headers: { authorization: "Bearer sk-wrong" } });
    expect(wrong.status).toBe(401);
    const keyed = await fetch(`${up.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(keyed.status).toBe(200);
    expect(await keyed.text()).toContain("berth_requests_total");
  });
});
