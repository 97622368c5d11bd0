// bench:serve's cold-start rows: spawn → ready → first token of one model server, and what a second
// replica of the same model file adds in memory (its private pages; the mapped model file's pages in
// the page cache are shared between replicas and counted once, in Pss).
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { Pool } from "undici";

export interface ColdStartTarget {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  readyPath: string;
}

/** Memory of one process from /proc/PID/smaps_rollup, MiB. */
export interface ProcessMemory {
  rssMiB: number;
  /** Proportional set size: shared pages divided among the processes that map them. */
  pssMiB: number;
  /** Pages only this process maps (Private_Clean + Private_Dirty): what one more replica costs. */
  privateMiB: number;
}

export interface ColdStartResult {
  system: string;
  spawnToReadyMs: number;
  readyToFirstTokenMs: number;
  spawnToFirstTokenMs: number;
  /** CPU ms the server process (and the children it waited for) used from spawn to ready. */
  cpuMsToReady: number;
  /** The first replica after its first token. */
  memory: ProcessMemory | undefined;
  /** A second replica of the same model file, started while the first runs, after its first token. */
  secondReplica: ProcessMemory | undefined;
  /** Berth's own phase report from its ready line (src/util/startup.ts). */
  startup?: unknown;
}

export type ColdStartOutcome = ColdStartResult | { system: string; unavailable: string };

/** The process and its descendants (a relaunching `berth serve` runs as two processes). */
function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // gone, or no /proc
  }
  return [pid, ...children.flatMap(processTree)];
}

/** Memory of a process and its descendants, summed, from /proc/PID/smaps_rollup. */
export function memoryOf(pid: number | undefined): ProcessMemory | undefined {
  if (pid === undefined) return undefined;
  try {
    const total = { rssMiB: 0, pssMiB: 0, privateMiB: 0 };
    for (const member of processTree(pid)) {
      const text = readFileSync(`/proc/${member}/smaps_rollup`, "utf8");
      const kib = (field: string) =>
        Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN);
      total.rssMiB += kib("Rss") / 1024;
      total.pssMiB += kib("Pss") / 1024;
      total.privateMiB += (kib("Private_Clean") + kib("Private_Dirty")) / 1024;
    }
    return total;
  } catch {
    return undefined;
  }
}

/** CPU ms of a process and its descendants from /proc (utime + stime, plus children already waited for). */
export function cpuMsWithChildren(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  let ticks = 0;
  for (const member of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${member}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index]), 0);
    } catch {
      // exited meanwhile
    }
  }
  return ticks * 10;
}

interface Started {
  child: ChildProcess;
  pool: Pool;
  spawnedAt: number;
  readyAt: number;
  cpuMsToReady: number;
  firstTokenAt: number;
  readyLine: () => unknown;
}

/** Polls `path` until it answers 200; cold starts poll every 10 ms (a 0.5 s start needs the grain). */
export async function waitReady(
  pool: Pool,
  path: string,
  child: ChildProcess,
  deadlineMs: number,
  pollMs = 10,
): Promise<void> {
  const deadline = performance.now() + deadlineMs;
  while (performance.now() < deadline) {
    // A crash leaves exitCode null and names the signal.
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    try {
      const { statusCode, body } = await pool.request({ path, method: "GET" });
      await body.dump();
      if (statusCode === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, pollMs));
  }
  throw new Error(`not ready after ${deadlineMs / 1000}s`);
}

async function firstToken(pool: Pool, model: string, prompt: string): Promise<void> {
  const { statusCode, body } = await pool.request({
    path: "/v1/completions",
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt, max_tokens: 1, temperature: 0, ignore_eos: true }),
  });
  const text = await body.text();
  if (statusCode !== 200) throw new Error(`first request: HTTP ${statusCode}: ${text.slice(0, 200)}`);
}

async function start(target: ColdStartTarget, port: number, model: string, prompt: string): Promise<Started> {
  const spawnedAt = performance.now();
  const child = spawn(target.command, target.args, { env: target.env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderrTail = "";
  child.stdout?.setEncoding("utf8").on("data", (text: string) => {
    if (stdout.length < 1_000_000) stdout += text;
  });
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderrTail = (stderrTail + text).slice(-2000);
  });
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 2 });
  try {
    await waitReady(pool, target.readyPath, child, 180_000);
    const readyAt = performance.now();
    const cpuMsToReady = cpuMsWithChildren(child.pid);
    await firstToken(pool, model, prompt);
    const firstTokenAt = performance.now();
    const readyLine = () => {
      for (const line of stdout.split("\n")) {
        if (!line.includes('"ready"')) continue;
        try {
          const parsed = JSON.parse(line) as { msg?: string; startup?: unknown };
          if (parsed.msg === "ready") return parsed.startup;
        } catch {
          // not a JSON line
        }
      }
      return undefined;
    };
    return { child, pool, spawnedAt, readyAt, cpuMsToReady, firstTokenAt, readyLine };
  } catch (error) {
    await stop({ child, pool });
    const last = stderrTail.trim().split("\n").pop();
    throw new Error(`${(error as Error).message}${last ? ` — ${last}` : ""}`);
  }
}

async function stop({ child, pool }: { child: ChildProcess; pool: Pool }): Promise<void> {
  await pool.close();
  if (child.exitCode === null && child.signalCode === null) {
    // A relaunching `berth serve` has a child of its own that would outlive its killed parent.
    const descendants = child.pid === undefined ? [] : processTree(child.pid).slice(1);
    const exited = new Promise((done) => child.once("exit", done));
    child.kill("SIGKILL");
    for (const pid of descendants) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await exited;
  }
}

/**
 * One cold start of `system` (target made for a free port), then a second replica of the same model
 * beside it. The page cache is warm (the model file was read by earlier runs), as on a node that
 * restarts or scales a model it already serves.
 */
export async function measureColdStart(
  system: string,
  targetFor: (port: number) => ColdStartTarget,
  freePort: () => Promise<number>,
  request: { model: string; prompt: string },
): Promise<ColdStartOutcome> {
  let first: Started | undefined;
  let second: Started | undefined;
  const startOnFreePort = async () => {
    const port = await freePort();
    return start(targetFor(port), port, request.model, request.prompt);
  };
  try {
    first = await startOnFreePort();
    const alone = memoryOf(first.child.pid);
    second = await startOnFreePort();
    return {
      system,
      spawnToReadyMs: first.readyAt - first.spawnedAt,
      readyToFirstTokenMs: first.firstTokenAt - first.readyAt,
      spawnToFirstTokenMs: first.firstTokenAt - first.spawnedAt,
      cpuMsToReady: first.cpuMsToReady,
      memory: alone,
      secondReplica: memoryOf(second.child.pid),
      ...(first.readyLine() === undefined ? {} : { startup: first.readyLine() }),
    };
  } catch (error) {
    return { system, unavailable: (error as Error).message };
  } finally {
    if (second) await stop(second);
    if (first) await stop(first);
  }
}

const format = (value: number | undefined, digits = 0) =>
  value === undefined || Number.isNaN(value) ? "–" : value.toFixed(digits);

/** The cold-start table: each system's median round (by spawn → ready), ratios against llama-server. */
export function coldStartTable(
  rounds: ColdStartOutcome[],
  modelBytes: number,
): { lines: string[]; results: ColdStartOutcome[] } {
  const modelMiB = modelBytes / 2 ** 20;
  const systems = [...new Set(rounds.map((round) => round.system))];
  const results = systems.map((system) => {
    const measured = rounds
      .filter((round): round is ColdStartResult => round.system === system && "spawnToReadyMs" in round)
      .sort((a, b) => a.spawnToReadyMs - b.spawnToReadyMs);
    return (
      measured[Math.floor((measured.length - 1) / 2)] ?? rounds.find((round) => round.system === system)!
    );
  });
  const peer = results.find(
    (result): result is ColdStartResult => result.system === "llama-server" && "spawnToReadyMs" in result,
  );
  const lines = [
    `Cold start (median of ${Math.max(1, rounds.length / Math.max(1, systems.length))} per system), model file ${format(modelMiB, 1)} MiB, ` +
      "page cache warm; second replica = the same model file started beside the first, its private pages after one token.",
    "",
    "| system | spawn→ready ms | ready→first token ms | spawn→first token ms | CPU ms to ready | RSS MiB | 2nd replica private MiB | 2nd replica Pss MiB | private ÷ model size | ready ×llama-server | CPU ×llama-server |",
    "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const result of results) {
    if (!("spawnToReadyMs" in result)) {
      lines.push(
        `| ${result.system} | unavailable: ${result.unavailable.replaceAll("|", "/")} | | | | | | | | | |`,
      );
      continue;
    }
    const vsReady = peer && result !== peer ? result.spawnToReadyMs / peer.spawnToReadyMs : undefined;
    const vsCpu = peer && result !== peer ? result.cpuMsToReady / peer.cpuMsToReady : undefined;
    lines.push(
      `| ${result.system} | ${format(result.spawnToReadyMs)} | ${format(result.readyToFirstTokenMs)} | ` +
        `${format(result.spawnToFirstTokenMs)} | ${format(result.cpuMsToReady)} | ${format(result.memory?.rssMiB, 1)} | ` +
        `${format(result.secondReplica?.privateMiB, 1)} | ${format(result.secondReplica?.pssMiB, 1)} | ` +
        `${format((result.secondReplica?.privateMiB ?? Number.NaN) / modelMiB, 2)} | ${format(vsReady, 2)} | ${format(vsCpu, 2)} |`,
    );
  }
  for (const result of results) {
    const phases = (result as { startup?: { phases?: Array<{ phase: string; ms: number; cpuMs: number }> } })
      .startup?.phases;
    if (!phases) continue;
    lines.push(
      "",
      `${result.system} phases (its ready line; wall ms are on one timeline, so overlapping work shows in the phase that ends first):`,
      "",
    );
    lines.push("| phase | wall ms | CPU ms |", "| --- | --: | --: |");
    for (const phase of phases)
      lines.push(`| ${phase.phase} | ${format(phase.ms)} | ${format(phase.cpuMs)} |`);
  }
  return { lines, results };
}
