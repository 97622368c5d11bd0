// Acceptance 5, 6 and 7 end to end, through a real `berth up`: auth and rate limits with keys that
// appear in no log, least-load balancing away from a replica busy with a long request, and a
// replica that hangs (SIGSTOP, the injected fault) taken out of rotation and then replaced.
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BerthUp, specText, startBerthUp, waitFor } from "./harness.js";

const GOOD_KEY = "sk-e2e-7f3a9c1d2b8e4f60";
const OTHER_KEY = "sk-e2e-0c9d8b7a6f5e4d3c";

const SPEC =
  specText({
    name: "guarded",
    replicas: "{ min: 1, max: 1 }",
    extra:
      "  auth: { enabled: true, apiKeysFrom: env:BERTH_E2E_KEYS }\n  rateLimit: { requestsPerMinute: 5 }\n",
  }) + specText({ name: "tiny", replicas: "{ min: 2, max: 2 }", parallel: 1, contextSize: 1024 });

async function complete(
  url: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(90_000),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Regular files below a directory, not following links (the home's models/ links to the shared cache). */
function filesUnder(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    const info = lstatSync(path);
    if (info.isDirectory()) return filesUnder(path);
    return info.isFile() ? [path] : [];
  });
}

describe.sequential("berth up: the gateway end to end", () => {
  let up: BerthUp;

  beforeAll(async () => {
    up = await startBerthUp(SPEC, [], { BERTH_E2E_KEYS: `alice ${GOOD_KEY},bob ${OTHER_KEY}` });
    await up.waitForStatus("all replicas ready", (status) =>
      status.models.every((model) => model.ready === model.desired && model.desired > 0),
    );
  }, 180_000);

  afterAll(async () => {
    await up?.cleanup();
  }, 120_000);

  it("answers 401 without a key or with a wrong one, 200 with a good one, 429 with Retry-After past the rate", async () => {
    const body = { model: "guarded", prompt: "Hello", max_tokens: 2 };
    expect((await complete(up.url, body)).status).toBe(401);
    expect((await complete(up.url, body, { authorization: "Bearer sk-wrong" })).status).toBe(401);
    const good = { authorization: `Bearer ${GOOD_KEY}` };
    expect((await complete(up.url, body, good)).status).toBe(200);
    // 5 per minute: within the next five requests one must be refused.
    let limited: { status: number; headers: Headers } | undefined;
    for (let index = 0; index < 5 && !limited; index++) {
      const answer = await complete(up.url, body, good);
      if (answer.status === 429) limited = answer;
      else expect(answer.status).toBe(200);
    }
    expect(limited?.status).toBe(429);
    expect(Number(limited?.headers.get("retry-after"))).toBeGreaterThan(0);
    // The other key has its own budget.
    expect((await complete(up.url, body, { authorization: `Bearer ${OTHER_KEY}` })).status).toBe(200);

    const files = filesUnder(up.home);
    expect(files.some((file) => file.endsWith(".log"))).toBe(true);
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      expect(text.includes(GOOD_KEY) || text.includes(OTHER_KEY), file).toBe(false);
    }
    expect(up.stdout().includes(GOOD_KEY) || up.stderr().includes(GOOD_KEY)).toBe(false);
  });

  it("sends new requests to the other replica while one is busy with a long request", async () => {
    // A streamed request's headers name its replica at once; it then runs for a while.
    const long = await fetch(`${up.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny", prompt: "Once upon a time", max_tokens: 900, stream: true }),
    });
    expect(long.status).toBe(200);
    const busy = long.headers.get("x-berth-replica");
    expect(busy).toBeTruthy();
    let longDone = false;
    const drained = long.text().then(() => {
      longDone = true;
    });

    const counts = new Map<string, number>();
    for (let index = 0; index < 20; index++) {
      const answer = await complete(up.url, { model: "tiny", prompt: `Short ${index}`, max_tokens: 2 });
      expect(answer.status).toBe(200);
      const replica = answer.headers.get("x-berth-replica") ?? "?";
      counts.set(replica, (counts.get(replica) ?? 0) + 1);
    }
    const stillRunning = !longDone;
    await drained;
    // Only meaningful while the long request was running all along.
    expect(stillRunning).toBe(true);
    expect(counts.get(busy ?? "")).toBeUndefined();
    expect([...counts.values()].reduce((sum, count) => sum + count, 0)).toBe(20);
    console.log(
      `least-load: long request on ${busy}; short requests per replica: ${JSON.stringify(Object.fromEntries(counts))}`,
    );
  });

  it("takes a hung replica out of rotation (requests get answers, none hangs) and replaces it", async () => {
    const before = await up.status();
    const tiny = before.models.find((model) => model.name === "tiny");
    const hung = tiny?.replicas[0];
    if (!hung?.pid) throw new Error("no replica to hang");
    // The injected fault: the process stops answering but keeps its sockets open.
    process.kill(hung.pid, "SIGSTOP");
    try {
      const started = Date.now();
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          complete(up.url, { model: "tiny", prompt: `While hung ${index}`, max_tokens: 2 }),
        ),
      );
      const statuses = answers.map((answer) => answer.status);
      expect(statuses.every((status) => status === 200 || status === 504)).toBe(true);
      expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(3);
      for (const answer of answers.filter((candidate) => candidate.status === 200)) {
        expect(answer.headers.get("x-berth-replica")).not.toBe(hung.id);
      }
      console.log(
        `hung replica: 6 requests answered (${statuses.join(",")}) within ${Date.now() - started} ms`,
      );

      // The runtime's liveness probe kills and restarts it.
      const replaced = await up.waitForStatus(
        "the hung replica restarted and ready",
        (status) => {
          const replica = status.models
            .find((model) => model.name === "tiny")
            ?.replicas.find((r) => r.id === hung.id);
          return replica?.state === "ready" && replica.pid !== hung.pid;
        },
        120_000,
      );
      expect(replaced.models.find((model) => model.name === "tiny")?.ready).toBe(2);
      const events = await up.berth(["events", "--model", "tiny"]);
      expect(events.stdout).toMatch(/liveness/);
    } finally {
      try {
        process.kill(hung.pid, "SIGCONT");
      } catch {
        // Already replaced.
      }
    }
    await waitFor("nothing left of the hung process", async () => {
      try {
        process.kill(hung.pid as number, 0);
        return undefined;
      } catch {
        return true;
      }
    });
  });
});
