// `npm run bench:convert`: a Hugging Face checkpoint to GGUF (f16), side by side: `berth model
// convert` vs llama.cpp's own convert_hf_to_gguf.py (the reference converter, on Debian's torch).
// The checkpoint is GPT-2 124M with random weights in HF format, made by transformers (cached).
// Each command runs in its own process under a small Python wrapper that reports the child's wall
// time and peak RSS (getrusage RUSAGE_CHILDREN); rounds alternate the systems; medians are
// reported. Goals: ≤ 1.0× llama.cpp's wall time, ≤ 0.5× its peak memory (streamed tensors).
// Smoke mode (BENCH_SMOKE=1 or --smoke): the 2-layer 64-wide checkpoint, one round.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { readGguf, readTensorBytes } from "../src/models/gguf.js";
import { ensureCheckpoint, llamaCppSource, python } from "../test/support/convert/oracle.js";
import { machineOf, publishResults, REPO_ROOT, targetLines } from "./report.js";

const run = promisify(execFile);
const supportDir = join(REPO_ROOT, "test", "support", "convert");

const MEASURE = `
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
wall = time.perf_counter() - start
print(json.dumps({"code": code, "wall": wall, "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
`;

interface Measurement {
  system: "berth" | "llama.cpp";
  round: number;
  wallSeconds: number;
  peakRssMiB: number;
}

async function measure(command: string[]): Promise<{ wall: number; maxrss_kb: number }> {
  const { stdout } = await run("/usr/bin/python3", ["-c", MEASURE, ...command], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
    code: number;
    wall: number;
    maxrss_kb: number;
  };
  if (result.code !== 0) throw new Error(`${command.slice(0, 4).join(" ")} exited ${result.code}`);
  return result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function sameTensors(a: string, b: string): Promise<boolean> {
  const [ours, theirs] = await Promise.all([readGguf(a), readGguf(b)]);
  if (ours.tensors.length !== theirs.tensors.length) return false;
  for (const tensor of theirs.tensors) {
    const mine = ours.tensors.find((candidate) => candidate.name === tensor.name);
    if (!mine || mine.type !== tensor.type) return false;
    const [x, y] = await Promise.all([
      readTensorBytes(ours, tensor.name),
      readTensorBytes(theirs, tensor.name),
    ]);
    if (!x.equals(y)) return false;
  }
  return true;
}

async function main(argv: string[]): Promise<void> {
  const smoke = process.env.BENCH_SMOKE === "1" || argv.includes("--smoke");
  const rounds = smoke ? 1 : 3;
  const shape = smoke ? "tiny" : "gpt2-124m";
  const startedAt = new Date();
  const loadBefore = loadavg();
  console.error(`bench:convert: preparing the ${shape} checkpoint (transformers; cached)`);
  const checkpoint = await ensureCheckpoint({ arch: "gpt2", shape });
  const [py, llamaSrc] = await Promise.all([python(), llamaCppSource()]);
  const scratch = mkdtempSync(join(tmpdir(), "berth-bench-convert-"));
  const commands = {
    berth: (out: string) => [
      process.execPath,
      join(REPO_ROOT, "bin", "berth.js"),
      "model",
      "convert",
      checkpoint,
      "--out",
      out,
      "--dtype",
      "f16",
    ],
    "llama.cpp": (out: string) => [
      py,
      join(supportDir, "llama_convert.py"),
      llamaSrc,
      checkpoint,
      "--outfile",
      out,
      "--outtype",
      "f16",
    ],
  } as const;
  const results: Measurement[] = [];
  let identical = false;
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (["berth", "llama.cpp"] as const) : (["llama.cpp", "berth"] as const);
      for (const system of order) {
        const out = join(scratch, `${system}-${round}.gguf`);
        const { wall, maxrss_kb } = await measure([...commands[system](out)]);
        results.push({ system, round, wallSeconds: wall, peakRssMiB: maxrss_kb / 1024 });
        console.error(
          `  round ${round + 1}: ${system} ${wall.toFixed(2)} s, ${(maxrss_kb / 1024).toFixed(0)} MiB peak`,
        );
      }
    }
    identical = await sameTensors(join(scratch, "berth-0.gguf"), join(scratch, "llama.cpp-0.gguf"));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const summary = (system: Measurement["system"]) => {
    const runs = results.filter((result) => result.system === system);
    return {
      wallSeconds: median(runs.map((r) => r.wallSeconds)),
      peakRssMiB: median(runs.map((r) => r.peakRssMiB)),
    };
  };
  const berth = summary("berth");
  const llama = summary("llama.cpp");
  const timeRatio = berth.wallSeconds / llama.wallSeconds;
  const memoryRatio = berth.peakRssMiB / llama.peakRssMiB;
  const targets = [
    { target: "wall time ≤ 1.0× llama.cpp's convert_hf_to_gguf.py", value: timeRatio, met: timeRatio <= 1.0 },
    {
      target: "peak RSS ≤ 0.5× llama.cpp's convert_hf_to_gguf.py",
      value: memoryRatio,
      met: memoryRatio <= 0.5,
    },
    { target: "tensor data byte-equal to llama.cpp's", value: identical ? 1 : 0, met: identical },
  ];

  const markdown = [
    `\n## bench:convert — GPT-2 ${shape} (random weights, HF safetensors f32) → GGUF f16, median of ${rounds}`,
    "",
    "| converter | wall time (s) | peak RSS (MiB) |",
    "| --- | --- | --- |",
    `| berth model convert | ${berth.wallSeconds.toFixed(2)} | ${berth.peakRssMiB.toFixed(0)} |`,
    `| llama.cpp convert_hf_to_gguf.py | ${llama.wallSeconds.toFixed(2)} | ${llama.peakRssMiB.toFixed(0)} |`,
    `| **ratio Berth / llama.cpp** | **${timeRatio.toFixed(2)}×** | **${memoryRatio.toFixed(2)}×** |`,
    "",
    ...targetLines(targets, (value) => Number(value).toFixed(2)),
  ].join("\n");
  publishResults({
    benchmark: "convert",
    smoke,
    startedAt,
    machine: machineOf(loadBefore),
    markdown,
    json: {
      config: { smoke, shape, rounds, dtype: "f16" },
      results,
      summary: { berth, llamaCpp: llama, timeRatio, memoryRatio, identical },
      targets,
    },
  });
  if (!identical) process.exitCode = 1;
}

await main(process.argv.slice(2));
