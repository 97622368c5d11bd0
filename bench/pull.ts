// `npm run bench:pull`: downloading one model file from a local hub-compatible server (in its own
// process), side by side: `berth model pull` vs curl (the physical reference) vs Python's
// huggingface_hub. Then a connection cut at 50%: how many bytes each client has sent again.
//
// The file is a real GGUF (the gpt2-124m shape in f32, ~500 MB) so Berth's model check runs as in
// real use. Each run writes into a fresh cache; rounds alternate the systems; the median round per
// system is reported. Smoke mode (BENCH_SMOKE=1 or --smoke): the tiny model (15 MB), one round.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, createReadStream, linkSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureTinyModel, type TinyDtype, type TinyShapeName } from "../src/models/tiny.js";
import type { HubRequestRecord } from "../test/support/hub-server.js";
import { type ProcessRun, runProcess } from "../test/support/run-process.js";
import { machineOf, publishResults, REPO_ROOT, targetLines } from "./report.js";

const SYSTEMS = ["berth", "curl", "python"] as const;
type SystemName = (typeof SYSTEMS)[number];
const REPO = "bench/gpt2-GGUF";

interface Config {
  smoke: boolean;
  shape: TinyShapeName;
  dtype: TinyDtype;
  repeat: number;
}

interface Download {
  system: SystemName;
  /** Seconds of the transfer as the client measures it (no interpreter start-up). */
  seconds: number;
  /** Berth: seconds of the model check after the transfer (curl and Python do none). */
  checkSeconds?: number;
  /** Seconds of the whole command, start-up included. */
  wallSeconds: number;
  megabytesPerSecond: number;
  sha256Ok: boolean;
}

interface Resume {
  system: SystemName;
  /** Bytes the server sent for the file beyond its size (0 = nothing sent twice). */
  bytesResent: number;
  /** Requests for the file's bytes (the first one is cut at 50%). */
  requests: number;
  sha256Ok: boolean;
  error?: string;
}

const here = dirname(fileURLToPath(import.meta.url));

/** A client run from the repository root with the environment given. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<ProcessRun> {
  return runProcess(command, args, { env, cwd: REPO_ROOT });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function startHub(root: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(here, "hub-process.js"), root], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolvePromise, reject) => {
    let buffer = "";
    child.stdout?.on("data", (chunk) => {
      buffer += chunk;
      const line = buffer.split("\n")[0];
      if (buffer.includes("\n") && line) resolvePromise((JSON.parse(line) as { url: string }).url);
    });
    child.once("exit", (code) => reject(new Error(`hub process exited with ${code}`)));
  });
  return { url, child };
}

async function control(url: string, path: string, method: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${url}/__control/${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return response.status === 204 ? undefined : response.json();
}

const PYTHON_DOWNLOAD = `
import json, sys, time
from huggingface_hub import hf_hub_download
started = time.perf_counter()
path = hf_hub_download(sys.argv[1], sys.argv[2])
print(json.dumps({"path": path, "seconds": time.perf_counter() - started}))
`;

interface Context {
  config: Config;
  hubUrl: string;
  file: string;
  size: number;
  sha256: string;
  python?: string;
  scratch: string;
}

let runCounter = 0;

/** One download by one system into a fresh cache; the output is removed afterwards. */
async function download(
  system: SystemName,
  context: Context,
): Promise<Download & { path?: string; error?: string }> {
  const home = join(context.scratch, `run-${++runCounter}`);
  mkdirSync(home, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HF_HOME: join(home, "hf"),
    BERTH_HOME: join(home, "berth"),
    HF_ENDPOINT: context.hubUrl,
    HF_HUB_DISABLE_TELEMETRY: "1",
  };
  delete env.HF_TOKEN;
  delete env.HF_HUB_CACHE;
  let seconds: number;
  let checkSeconds: number | undefined;
  let path: string;
  let result: ProcessRun;
  try {
    if (system === "curl") {
      path = join(home, context.file);
      const url = `${context.hubUrl}/${REPO}/resolve/main/${context.file}`;
      result = await run(
        "curl",
        [
          "-sS",
          "-L",
          "-C",
          "-",
          "--retry",
          "5",
          "--retry-all-errors",
          "--retry-delay",
          "0",
          "-o",
          path,
          "-w",
          "%{time_total}",
          url,
        ],
        env,
      );
      seconds = Number(result.stdout.trim());
    } else if (system === "berth") {
      result = await run(
        process.execPath,
        ["bin/berth.js", "model", "pull", `hf://${REPO}/${context.file}`, "--json"],
        env,
      );
      const parsed = JSON.parse(result.stdout || "{}") as {
        path: string;
        fetchSeconds: number;
        checkSeconds: number;
      };
      path = parsed.path;
      seconds = parsed.fetchSeconds;
      checkSeconds = parsed.checkSeconds;
    } else {
      if (!context.python) throw new Error("no Python huggingface_hub (scripts/python-env.sh failed)");
      result = await run(context.python, ["-c", PYTHON_DOWNLOAD, REPO, context.file], env);
      const parsed = JSON.parse(result.stdout.trim().split("\n").at(-1) || "{}") as {
        path: string;
        seconds: number;
      };
      path = parsed.path;
      seconds = parsed.seconds;
    }
    if (result.code !== 0) {
      // The client's complaint in one line, fit for a table cell.
      const complaint =
        result.stderr.match(/^\w*Error: .*$/m)?.[0] ??
        result.stderr.trim().split("\n").filter(Boolean).at(-1) ??
        "";
      throw new Error(`${system} exited ${result.code}: ${complaint.replace(/\|/g, "/").slice(0, 160)}`);
    }
    const sha256Ok = (await sha256File(path)) === context.sha256;
    return {
      system,
      seconds,
      wallSeconds: result.seconds,
      megabytesPerSecond: context.size / 1e6 / seconds,
      sha256Ok,
      path,
      ...(checkSeconds === undefined ? {} : { checkSeconds }),
    };
  } catch (error) {
    return {
      system,
      seconds: Number.NaN,
      wallSeconds: Number.NaN,
      megabytesPerSecond: Number.NaN,
      sha256Ok: false,
      error: (error as Error).message,
    };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

async function resume(system: SystemName, context: Context): Promise<Resume> {
  await control(context.hubUrl, "requests", "DELETE");
  const cutAt = Math.floor(context.size / 2);
  await control(context.hubUrl, "faults", "PUT", [
    { kind: "cut", file: context.file, atByte: cutAt, times: 1 },
  ]);
  const outcome = await download(system, context);
  await control(context.hubUrl, "faults", "PUT", []);
  const requests = (await control(context.hubUrl, "requests", "GET")) as HubRequestRecord[];
  const bodies = requests.filter(
    (r) => r.method === "GET" && r.path.includes(context.sha256) && r.range !== "bytes=0-0",
  );
  const sent = bodies.reduce((sum, r) => sum + r.bytesSent, 0);
  const result: Resume = {
    system,
    bytesResent: sent - context.size,
    requests: bodies.length,
    sha256Ok: outcome.sha256Ok,
  };
  if (outcome.error) result.error = outcome.error;
  return result;
}

function fmt(value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "-";
}

function markdown(config: Config, size: number, downloads: Download[], resumes: Resume[]): string {
  const curl = downloads.find((d) => d.system === "curl");
  const lines = [
    `## bench:pull — ${(size / 1e6).toFixed(0)} MB GGUF (${config.shape} ${config.dtype}) from a local hub server${config.smoke ? " (smoke)" : ""}`,
    "",
    "| client | transfer s | MB/s | × curl | + model check s | wall s (with start-up) | sha256 | cut at 50%: bytes re-sent | byte requests |",
    "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
  ];
  for (const system of SYSTEMS) {
    const d = downloads.find((each) => each.system === system);
    const r = resumes.find((each) => each.system === system);
    if (!d) continue;
    const ratio = curl ? d.megabytesPerSecond / curl.megabytesPerSecond : Number.NaN;
    lines.push(
      `| ${system} | ${fmt(d.seconds)} | ${fmt(d.megabytesPerSecond, 0)} | ${fmt(ratio)} | ${d.checkSeconds === undefined ? "-" : fmt(d.checkSeconds)} | ${fmt(d.wallSeconds)} | ${d.sha256Ok ? "ok" : "WRONG"} | ${r ? (r.error ? `failed: ${r.error.slice(0, 120)}` : r.bytesResent) : "-"} | ${r?.requests ?? "-"} |`,
    );
  }
  lines.push(
    "",
    "Transfer s: as each client measures it (curl's time_total; Berth's and Python's own timers, so interpreter start-up is not counted; Berth's includes its sha256 check of the bytes). Berth then runs the model check on the file before it counts as cached. Bytes re-sent: bytes the server sent for the file beyond its size, with one cut at 50% (a client that fails after the cut shows the error).",
  );
  return lines.join("\n");
}

async function main(argv: string[]): Promise<void> {
  const smoke = argv.includes("--smoke") || process.env.BENCH_SMOKE === "1";
  const config: Config = smoke
    ? { smoke, shape: "tiny", dtype: "f32", repeat: 1 }
    : { smoke, shape: "gpt2-124m", dtype: "f32", repeat: 3 };
  const startedAt = new Date();
  const loadBefore = loadavg();
  console.error(`bench:pull: preparing the ${config.shape} ${config.dtype} model`);
  const model = await ensureTinyModel({ shape: config.shape, dtype: config.dtype });
  const scratch = mkdtempSync(join(tmpdir(), "berth-bench-pull-"));
  const file = `gpt2-${config.shape}-F32.gguf`;
  const repoDir = join(scratch, "hub", ...REPO.split("/"));
  mkdirSync(repoDir, { recursive: true });
  try {
    linkSync(model, join(repoDir, file));
  } catch {
    copyFileSync(model, join(repoDir, file));
  }
  const sha256 = await sha256File(model);
  const { statSync } = await import("node:fs");
  const size = statSync(model).size;
  const pythonRun = await run("bash", ["scripts/python-env.sh"], process.env);
  const python = pythonRun.code === 0 ? pythonRun.stdout.trim() : undefined;
  const hub = await startHub(join(scratch, "hub"));
  try {
    // The server hashes the file on first sight; do that before timing anything.
    await fetch(`${hub.url}/api/models/${REPO}`).then((r) => r.text());
    const context: Context = {
      config,
      hubUrl: hub.url,
      file,
      size,
      sha256,
      scratch,
      ...(python ? { python } : {}),
    };
    const rounds: Download[] = [];
    for (let round = 1; round <= config.repeat; round++) {
      for (const system of SYSTEMS) {
        console.error(`  download: ${system}${config.repeat > 1 ? ` (round ${round})` : ""}`);
        const { path: _path, ...outcome } = await download(system, context);
        if ("error" in outcome && outcome.error) console.error(`    ${outcome.error}`);
        rounds.push(outcome);
      }
    }
    const downloads = SYSTEMS.map((system) => {
      const mine = rounds.filter((r) => r.system === system && Number.isFinite(r.seconds));
      const best = mine.find((r) => r.seconds === median(mine.map((m) => m.seconds)));
      return best ?? rounds.find((r) => r.system === system);
    }).filter((d): d is Download => d !== undefined);
    const resumes: Resume[] = [];
    for (const system of SYSTEMS) {
      console.error(`  cut at 50%: ${system}`);
      resumes.push(await resume(system, context));
    }
    const table = markdown(config, size, downloads, resumes);
    const berth = downloads.find((d) => d.system === "berth");
    const curl = downloads.find((d) => d.system === "curl");
    const ratio = berth && curl ? berth.megabytesPerSecond / curl.megabytesPerSecond : Number.NaN;
    const berthResume = resumes.find((r) => r.system === "berth");
    const targets = [
      { target: "throughput >= 0.9x curl", value: ratio, met: ratio >= 0.9 },
      {
        target: "0 bytes re-sent after a cut",
        value: berthResume?.bytesResent,
        met: berthResume?.bytesResent === 0,
      },
    ];
    publishResults({
      benchmark: "pull",
      smoke,
      startedAt,
      machine: machineOf(loadBefore),
      markdown: [table, "", ...targetLines(targets, (value) => fmt(Number(value)))].join("\n"),
      json: {
        config,
        file: { name: file, bytes: size, sha256 },
        results: downloads,
        rounds,
        resume: resumes,
        targets,
      },
    });
    if (!berth?.sha256Ok || !berthResume?.sha256Ok) process.exitCode = 1;
  } finally {
    hub.child.kill("SIGTERM");
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main(process.argv.slice(2));
