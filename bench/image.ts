// `npm run bench:image`: size and build time of the CPU image, `berth build` (cold cache, warm cache,
// one source file changed) against `podman build` of the Dockerfile (cold, warm, one file changed), in
// one run on the same base (scripts/image/make-base.sh); plus the seed's approach (TensorFlow base +
// torch) from published sizes, for scale. Markdown table and JSON in bench/results/.
// Smoke mode (`-- --smoke` or BENCH_SMOKE=1) times berth build only, for CI.
import { spawnSync } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Podman, runOk } from "../test/image/podman.js";
import { machineOf, publishResults, REPO_ROOT } from "./report.js";

/**
 * The seed packaged GPT-2 on a TensorFlow base image and installed torch on top. No registry is
 * reachable from these machines, so these are published sizes, not measurements; each says where it
 * comes from and how sure it is.
 */
const SEED_APPROACH = [
  {
    part: "tensorflow/tensorflow:latest (2.x, CPU, linux/amd64)",
    compressedBytes: 600e6,
    source:
      "Docker Hub's tag page for tensorflow/tensorflow, as recalled (2.x CPU tags list ~0.55-0.65 GB compressed); " +
      "approximate, not fetched",
  },
  {
    part: "torch 2.5.1+cu121 wheel, cp311 linux x86_64 (CUDA libraries come as separate nvidia-* wheels)",
    compressedBytes: 780e6,
    source:
      "file size of torch-2.5.1+cu121-cp311-cp311-linux_x86_64.whl as mirrored at huggingface.co/Gluttony10/DataFlop",
  },
  {
    part: "NVIDIA wheels torch 2.5 pulls from PyPI (cudnn, cublas, cusparse, cufft, nccl, …)",
    compressedBytes: 2.5e9,
    source: "sum of those PyPI wheel sizes as recalled (cudnn alone ~0.66 GB); approximate, not fetched",
  },
] as const;

const TARGET_CPU_IMAGE_BYTES = 250e6;

interface Timed<T> {
  seconds: number;
  value: T;
}

async function timed<T>(work: () => Promise<T>): Promise<Timed<T>> {
  const started = process.hrtime.bigint();
  const value = await work();
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, value };
}

const smoke = process.argv.includes("--smoke") || process.env.BENCH_SMOKE === "1";
const home = process.env.BERTH_HOME ?? join(REPO_ROOT, ".berth", "bench-home");

interface BuildJson {
  manifestDigest: string;
  compressedSize: number;
  layers: Array<{ name: string; size: number; uncompressedSize: number; cached: boolean }>;
}

async function berthBuild(
  project: string,
  berthHome: string,
  archive: string,
  base: string,
): Promise<BuildJson> {
  const out = await runOk(
    process.execPath,
    [
      join(REPO_ROOT, "bin", "berth.js"),
      "build",
      "--project",
      project,
      "--json",
      "--tag",
      "localhost/berth:bench",
      "--base",
      `oci-archive:${base}`,
      "--oci-archive",
      archive,
    ],
    { env: { ...process.env, BERTH_HOME: berthHome } },
  );
  return JSON.parse(out) as BuildJson;
}

/** What `berth build` packages, copied (node_modules linked) so a file can be changed without touching the repo. */
function snapshotProject(into: string): string {
  mkdirSync(into, { recursive: true });
  for (const name of ["package.json", "package-lock.json", "bin", "dist"]) {
    cpSync(join(REPO_ROOT, name), join(into, name), { recursive: true, preserveTimestamps: true });
  }
  symlinkSync(join(REPO_ROOT, "node_modules"), join(into, "node_modules"));
  return into;
}

/** The Dockerfile's build context: BERTH_DOCKER_CONTEXT, else an export of HEAD (others' uncommitted work stays out). */
function dockerContext(into: string): string {
  if (process.env.BERTH_DOCKER_CONTEXT) {
    cpSync(process.env.BERTH_DOCKER_CONTEXT, into, { recursive: true });
    return into;
  }
  mkdirSync(into, { recursive: true });
  const archive = spawnSync("sh", ["-c", `git -C '${REPO_ROOT}' archive HEAD | tar -x -C '${into}'`], {
    encoding: "utf8",
  });
  if (archive.status !== 0) throw new Error(`git archive failed: ${archive.stderr}`);
  return into;
}

function megabytes(bytes: number | undefined): string {
  return bytes === undefined ? "–" : `${(bytes / 1e6).toFixed(1)} MB`;
}

function seconds(value: number | undefined): string {
  return value === undefined ? "–" : `${value.toFixed(1)} s`;
}

interface Row {
  method: string;
  cold?: number;
  warm?: number;
  changed?: number;
  unpackedBytes?: number;
  compressedBytes?: number;
  note?: string;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadBefore = loadavg();
  const work = mkdtempSync(join(process.env.BERTH_BENCH_TMP ?? tmpdir(), "berth-bench-image-"));
  const rows: Row[] = [];
  try {
    const base = (
      await runOk("bash", [join(REPO_ROOT, "scripts", "image", "make-base.sh")], {
        env: { ...process.env, BERTH_HOME: home },
      })
    )
      .trim()
      .split("\n")
      .at(-1) as string;

    // berth build: a fresh layer cache, the same again, then one compiled file changed.
    const project = snapshotProject(join(work, "project"));
    const cache = join(work, "berth-home");
    const cold = await timed(() => berthBuild(project, cache, join(work, "cold.tar"), base));
    const warm = await timed(() => berthBuild(project, cache, join(work, "warm.tar"), base));
    appendFileSync(join(project, "dist", "cli", "main.js"), "\n// bench: a changed line\n");
    const changed = await timed(() => berthBuild(project, cache, join(work, "changed.tar"), base));
    const berthRow: Row = {
      method: "berth build (no daemon)",
      cold: cold.seconds,
      warm: warm.seconds,
      changed: changed.seconds,
      compressedBytes: cold.value.compressedSize,
      note: `warm: ${warm.value.layers.filter((l) => l.cached).length}/${warm.value.layers.length} layers cached; changed: rebuilt ${changed.value.layers
        .filter((l) => !l.cached)
        .map((l) => l.name)
        .join(", ")}`,
    };
    rows.push(berthRow);

    const podman = new Podman(join(work, "podman"));
    try {
      await podman.ok(["load", "--quiet", "--input", base]);
      await podman.ok(["load", "--quiet", "--input", join(work, "cold.tar")]);
      berthRow.unpackedBytes = Number(
        (await podman.ok(["image", "inspect", "--format", "{{.Size}}", "localhost/berth:bench"])).trim(),
      );

      if (smoke) {
        rows.push({ method: "podman build (Dockerfile)", note: "skipped in smoke mode" });
      } else {
        const context = dockerContext(join(work, "context"));
        const npmCache = spawnSync("npm", ["config", "get", "cache"], { encoding: "utf8" }).stdout.trim();
        const build = () =>
          podman.run(
            [
              "build",
              "--format",
              "docker",
              "--tag",
              "localhost/berth:bench-dockerfile",
              "--build-arg",
              "BASE_IMAGE=localhost/berth-node-base:20",
              "--build-arg",
              "NPM_CONFIG_OFFLINE=true",
              "--build-arg",
              "NPM_CONFIG_CACHE=/npm-cache",
              "--volume",
              `${npmCache}:/npm-cache:O`,
              context,
            ],
            1_800_000,
          );
        const podmanCold = await timed(build);
        if (podmanCold.value.code !== 0) {
          rows.push({
            method: "podman build (Dockerfile)",
            note: `failed: ${podmanCold.value.stderr.trim().split("\n").slice(-3).join(" / ")}`,
          });
        } else {
          const podmanWarm = await timed(build);
          appendFileSync(join(context, "src", "cli", "main.ts"), "\n// bench: a changed line\n");
          const podmanChanged = await timed(build);
          const saved = join(work, "dockerfile.tar");
          await podman.ok([
            "save",
            "--quiet",
            "--format",
            "oci-archive",
            "--output",
            saved,
            "localhost/berth:bench-dockerfile",
          ]);
          const manifest = JSON.parse(
            await runOk("skopeo", ["inspect", "--raw", `oci-archive:${saved}`]),
          ) as {
            layers: Array<{ size: number }>;
          };
          rows.push({
            method: "podman build (Dockerfile)",
            cold: podmanCold.seconds,
            ...(podmanWarm.value.code === 0 ? { warm: podmanWarm.seconds } : {}),
            ...(podmanChanged.value.code === 0 ? { changed: podmanChanged.seconds } : {}),
            unpackedBytes: Number(
              (
                await podman.ok([
                  "image",
                  "inspect",
                  "--format",
                  "{{.Size}}",
                  "localhost/berth:bench-dockerfile",
                ])
              ).trim(),
            ),
            compressedBytes: manifest.layers.reduce((sum, layer) => sum + layer.size, 0),
            note: "cold: empty layer cache, npm ci from the local npm cache (offline); warm: every step cached",
          });
        }
      }
    } finally {
      await podman.destroy();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const seedCompressed = SEED_APPROACH.reduce((sum, part) => sum + part.compressedBytes, 0);
  const berth = rows[0] as Row;
  const dockerfile = rows[1];
  const machine = machineOf(loadBefore);
  const result = {
    smoke,
    rows,
    targets: {
      cpuImageUnpackedAtMostBytes: TARGET_CPU_IMAGE_BYTES,
      berthImageUnpackedBytes: berth.unpackedBytes,
      cpuImageMet: berth.unpackedBytes !== undefined && berth.unpackedBytes <= TARGET_CPU_IMAGE_BYTES,
      warmBerthFasterThanPodmanWarm:
        berth.warm !== undefined && dockerfile?.warm !== undefined ? berth.warm < dockerfile.warm : null,
      warmBerthFasterThanPodmanCold:
        berth.warm !== undefined && dockerfile?.cold !== undefined ? berth.warm < dockerfile.cold : null,
    },
    seedApproach: { parts: SEED_APPROACH, compressedBytes: seedCompressed, measured: false },
  };

  const lines = [
    `# bench:image${smoke ? " (smoke)" : ""} — ${startedAt.toISOString()}`,
    "",
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), load ${machine.load.after
      .map((l) => l.toFixed(2))
      .join(" ")} at the end. ` +
      "Same local Node 20 base (scripts/image/make-base.sh) for both; sizes without a model.",
    "",
    "| method | cold | warm | one file changed | unpacked | compressed | notes |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map(
      (row) =>
        `| ${row.method} | ${seconds(row.cold)} | ${seconds(row.warm)} | ${seconds(row.changed)} | ${megabytes(row.unpackedBytes)} | ${megabytes(row.compressedBytes)} | ${row.note ?? ""} |`,
    ),
    `| seed approach: TensorFlow base + torch (published sizes, not measured) | – | – | – | – | ≈ ${megabytes(seedCompressed)} | ${SEED_APPROACH.map((p) => `${p.part}: ${megabytes(p.compressedBytes)}`).join("; ")} |`,
    "",
    `Target CPU image ≤ ${megabytes(TARGET_CPU_IMAGE_BYTES)} unpacked: ${result.targets.cpuImageMet ? "met" : "NOT met"} (${megabytes(berth.unpackedBytes)}).`,
    `Warm berth build faster than podman build: warm vs warm ${String(result.targets.warmBerthFasterThanPodmanWarm)}, warm vs cold ${String(result.targets.warmBerthFasterThanPodmanCold)}.`,
    "",
    "Seed sizes, sources:",
    ...SEED_APPROACH.map((p) => `- ${p.part}: ${megabytes(p.compressedBytes)} — ${p.source}`),
    "",
  ];
  publishResults({ benchmark: "image", smoke, startedAt, machine, markdown: lines.join("\n"), json: result });
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:image failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
