// Chaos, bounded in time and count, on loopback only, through real `berth up` processes: a mixed
// load of streaming and non-streaming requests runs while the test SIGKILLs a replica, SIGSTOPs
// one, applies a broken spec and then the good one again, makes every replica crash-loop (its
// model file taken away) and back, and restarts berth up (the gateway) on the same port. Every
// request is counted: none may end without an answer (a cut connection, a stream with neither
// [DONE] nor an error event, a hang), and no replica process may outlive its berth up.
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { freePort } from "../support/net.js";
import { alive, type BerthUp, specText, startBerthUp, waitFor } from "./harness.js";

const MODEL = "chaos";
/** Bounds: the load stops after this many requests even if the phases are not done. */
const MAX_REQUESTS = 3_000;
const WORKERS = 3;

type Outcome =
  | "ok"
  | "stream-done"
  | "error-answer"
  | "stream-error-event"
  | "refused" // connection refused: no request was accepted (berth up restarting)
  | "lost";

interface Tally {
  counts: Record<Outcome, number>;
  codes: Record<string, number>;
  lost: string[];
}

function specFor(source: string): string {
  return specText({ name: MODEL, replicas: "{ min: 2, max: 2 }", parallel: 2 }).replace(
    "source: tiny://tiny?dtype=q8_0",
    `source: file://${source}`,
  );
}

/** One request through the gateway, classified by how it ended. */
async function oneRequest(url: string, index: number, tally: Tally): Promise<void> {
  const stream = index % 2 === 0;
  const body = JSON.stringify({
    model: MODEL,
    prompt: `Chaos ${index}: the harbour`,
    max_tokens: 12,
    ...(stream ? { stream: true } : {}),
  });
  let outcome: Outcome;
  let detail = "";
  try {
    const response = await fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(120_000),
    });
    const text = await response.text();
    if (response.status === 200 && stream) {
      const events = text.split("\n\n").filter((event) => event.startsWith("data: "));
      const last = events.at(-1) ?? "";
      if (last === "data: [DONE]") outcome = "stream-done";
      else if (last.includes('"error"')) {
        outcome = "stream-error-event";
        detail = (JSON.parse(last.slice(6)) as { error: { code: string } }).error.code;
      } else {
        outcome = "lost";
        detail = `stream ended without [DONE] or an error event: ${text.slice(-200)}`;
      }
    } else if (response.status === 200) {
      const parsed = JSON.parse(text) as { choices?: unknown[] };
      outcome = parsed.choices?.length === 1 ? "ok" : "lost";
      detail = outcome === "lost" ? text.slice(0, 200) : "";
    } else {
      const parsed = JSON.parse(text) as { error?: { code?: string } };
      if (typeof parsed.error?.code === "string") {
        outcome = "error-answer";
        detail = `${response.status} ${parsed.error.code}`;
      } else {
        outcome = "lost";
        detail = `${response.status} without an error body: ${text.slice(0, 200)}`;
      }
    }
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    outcome = code === "ECONNREFUSED" ? "refused" : "lost";
    detail = `${(error as Error).message} ${code ?? ""}`;
  }
  tally.counts[outcome] += 1;
  if (outcome === "error-answer" || outcome === "stream-error-event")
    tally.codes[detail] = (tally.codes[detail] ?? 0) + 1;
  if (outcome === "lost" && tally.lost.length < 20) tally.lost.push(detail);
  // Pacing, not synchronisation: a refusal comes back at once, and a tight loop of them would
  // use up the request bound and the CPU the replicas need.
  if (outcome === "refused" || outcome === "error-answer")
    await new Promise((resolve) => setTimeout(resolve, 100));
}

describe.sequential("chaos under load (berth up)", () => {
  const ups: BerthUp[] = [];
  const directory = mkdtempSync(join(tmpdir(), "berth-chaos-"));

  afterAll(async () => {
    for (const up of ups) await up.cleanup();
    rmSync(directory, { recursive: true, force: true });
  }, 180_000);

  it("answers every request (a result or an error) while replicas die, hang, crash-loop and berth up restarts", async () => {
    const tiny = await ensureTinyModel({ shape: "tiny", dtype: "q8_0" });
    // The model file is this test's own copy: it is taken away to make the replicas crash-loop.
    const modelPath = join(directory, "chaos.gguf");
    copyFileSync(tiny, modelPath);
    const brokenPath = join(directory, "broken.gguf");
    writeFileSync(brokenPath, Buffer.from("GGUF\u0003\u0000\u0000\u0000 not really a model"));
    const port = await freePort();

    let up = await startBerthUp(specFor(modelPath), ["--port", String(port)]);
    ups.push(up);
    const url = up.url;
    const ready = (count: number) => (status: Awaited<ReturnType<BerthUp["status"]>>) =>
      status.models[0]?.replicas.filter((replica) => replica.state === "ready").length === count;
    await up.waitForStatus("two ready replicas", ready(2), 180_000);

    // The load: closed loop, a few workers, until the phases are done (or the bound is reached).
    const tally: Tally = {
      counts: { ok: 0, "stream-done": 0, "error-answer": 0, "stream-error-event": 0, refused: 0, lost: 0 },
      codes: {},
      lost: [],
    };
    let next = 0;
    let stopLoad = false;
    const workers = Array.from({ length: WORKERS }, async () => {
      while (!stopLoad && next < MAX_REQUESTS) await oneRequest(url, next++, tally);
    });
    const served = () => tally.counts.ok + tally.counts["stream-done"];
    const waitServed = async (what: string, more: number) => {
      const target = served() + more;
      await waitFor(what, async () => (served() >= target ? true : undefined), 120_000, 50);
    };

    // 1. SIGKILL a replica: it is restarted; requests on it are retried or answered with an error.
    await waitServed("load flowing", 10);
    const victim = (await up.status()).models[0]!.replicas.find((replica) => replica.state === "ready")!;
    process.kill(victim.pid!, "SIGKILL");
    await up.waitForStatus("the killed replica back", (status) =>
      status.models[0]!.replicas.some(
        (replica) => replica.id === victim.id && replica.restarts > 0 && replica.state === "ready",
      ),
    );
    await waitServed("load after the kill", 10);

    // 2. SIGSTOP a replica: it leaves rotation (unresponsive), and comes back after SIGCONT.
    const frozen = (await up.status()).models[0]!.replicas.find((replica) => replica.state === "ready")!;
    process.kill(frozen.pid!, "SIGSTOP");
    const stoppedAt = Date.now();
    try {
      await up.waitForStatus("the stopped replica out of rotation", (status) =>
        status.models[0]!.replicas.some((replica) => replica.id === frozen.id && replica.state !== "ready"),
      );
      // Measured, not asserted (status is polled every 250 ms on a shared machine).
      console.log(`chaos: SIGSTOPped replica out of rotation after ${Date.now() - stoppedAt} ms`);
      await waitServed("load served by the other replica", 10);
    } finally {
      process.kill(frozen.pid!, "SIGCONT");
    }
    await up.waitForStatus("two ready replicas again", ready(2), 180_000);

    // 3. A broken spec is refused for that model (its replicas keep serving); the good one applies.
    writeFileSync(join(directory, "broken.yaml"), specFor(brokenPath));
    const broken = await up.berth(["apply", "-f", join(directory, "broken.yaml")]);
    expect(broken.stderr).not.toMatch(/\n\s+at /);
    await waitServed("load after the broken spec", 10);
    writeFileSync(join(directory, "good.yaml"), specFor(modelPath));
    const good = await up.berth(["apply", "-f", join(directory, "good.yaml")]);
    expect(good.code).toBe(0);
    await up.waitForStatus("two ready replicas on the good spec", ready(2), 180_000);
    await waitServed("load after the good spec", 10);

    // 4. Every replica crash-loops (its model file is gone): the gateway answers at once with
    // 503 BERTH_MODEL_UNAVAILABLE and says why; /readyz says the gateway cannot serve.
    renameSync(modelPath, `${modelPath}.away`);
    for (const replica of (await up.status()).models[0]!.replicas)
      if (replica.pid) process.kill(replica.pid, "SIGKILL");
    const failing = await up.waitForStatus(
      "the model unavailable",
      (status) => status.models[0]?.available === false,
      180_000,
    );
    expect(failing.models[0]!.unavailableReason).toMatch(/crash-looping/);
    const askedAt = Date.now();
    const refused = await fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "hi", max_tokens: 2 }),
    });
    console.log(`chaos: a request for the crash-looping model answered in ${Date.now() - askedAt} ms`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "BERTH_MODEL_UNAVAILABLE",
    );
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    renameSync(`${modelPath}.away`, modelPath);
    await up.waitForStatus("replicas recovered from the crash loop", ready(2), 180_000);
    await waitServed("load after the crash loop", 10);

    // 5. berth up (the gateway with it) restarts on the same port: in-flight requests drain,
    // new ones are refused at the socket until the new one listens.
    const firstPids = [...up.seenPids];
    expect(await up.stop("SIGTERM")).toBe(0);
    for (const pid of firstPids) expect(alive(pid)).toBe(false);
    up = await startBerthUp(specFor(modelPath), ["--port", String(port)]);
    ups.push(up);
    await up.waitForStatus("two ready replicas after the restart", ready(2), 180_000);
    await waitServed("load after the restart", 10);

    stopLoad = true;
    await Promise.all(workers);
    expect(await up.stop("SIGTERM")).toBe(0);
    for (const pid of up.seenPids) expect(alive(pid)).toBe(false);

    const total = Object.values(tally.counts).reduce((sum, count) => sum + count, 0);
    console.log(`chaos: ${total} requests`, JSON.stringify(tally.counts), JSON.stringify(tally.codes));
    expect(tally.lost).toEqual([]);
    expect(tally.counts.lost).toBe(0);
    expect(served()).toBeGreaterThan(0);
  }, 900_000);
});
