// Every `berth` command with bad input: a clear message on stderr, a non-zero exit code, and never
// a stack trace (no "    at …" frame). Broken model files are refused by validate and serve with
// one line naming the file and what is wrong, exit code 2, before any engine loads them.
// Spawns `node bin/berth.js` (needs `npm run build`).
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { runBerth } from "../support/berth-cli.js";

const directory = mkdtempSync(join(tmpdir(), "berth-bad-input-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

interface Run {
  args: string[];
  code: number | null;
  stdout: string;
  stderr: string;
  hung: boolean;
}

// A command that has not answered by then is reported as hung (none should wait on bad input).
const HANG_MS = 60_000;

async function berth(args: string[]): Promise<Run> {
  const env = {
    ...process.env,
    BERTH_HOME: join(directory, "home"),
    KUBECONFIG: join(directory, "no-kubeconfig"),
    BERTH_DEBUG: "",
  };
  const { code, stdout, stderr, timedOut } = await runBerth(args, env, { timeoutMs: HANG_MS });
  return { args, code, stdout, stderr, hung: timedOut };
}

/** Runs at most `width` commands at a time (the suite shares 2 cores). */
async function runAll(argvs: string[][], width = 3): Promise<Run[]> {
  const results: Run[] = new Array(argvs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < argvs.length) {
      const index = next++;
      results[index] = await berth(argvs[index]!);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

// A V8 stack frame ends in a source position ("at f (/x.js:1:2)", "at node:fs:1:2") or a V8 marker
// ("at Promise.all (index 0)", "at <anonymous>"); an indented help line that starts with "at" does not.
const STACK_FRAME = /^\s+at \S.*(?::\d+:\d+\)?|\((?:index \d+|native|<anonymous>)\))$/m;

const HEAD = "apiVersion: berth.dev/v1alpha1\nkind: ModelDeployment\nmetadata:\n  name: m\n";
const paths = {
  good: join(directory, "good.yaml"),
  alias: join(directory, "alias.yaml"),
  wrongType: join(directory, "wrong-type.yaml"),
  garbage: join(directory, "garbage.yaml"),
  missing: join(directory, "missing.yaml"),
  folder: join(directory, "a-folder"),
  randomModel: join(directory, "random.gguf"),
  truncatedModel: join(directory, "truncated.gguf"),
  futureModel: join(directory, "version-99.gguf"),
  badModelSpec: join(directory, "bad-model.yaml"),
};

beforeAll(async () => {
  const tiny = await ensureTinyModel();
  const tinyBytes = readFileSync(tiny);
  writeFileSync(paths.good, `${HEAD}spec:\n  model: { source: tiny://tiny }\n`);
  writeFileSync(paths.alias, `${HEAD}spec:\n  model:\n    source: *nope\n`);
  writeFileSync(paths.wrongType, `${HEAD}spec:\n  model: { source: tiny://tiny, contextSize: "abc" }\n`);
  writeFileSync(paths.garbage, randomBytes(2048));
  mkdirSync(paths.folder);
  writeFileSync(paths.randomModel, randomBytes(64 * 1024));
  writeFileSync(paths.truncatedModel, tinyBytes.subarray(0, Math.floor(tinyBytes.length / 2)));
  const future = Buffer.from(tinyBytes.subarray(0, 1 << 20));
  future.writeUInt32LE(99, 4);
  writeFileSync(paths.futureModel, future);
  writeFileSync(
    paths.badModelSpec,
    `${HEAD}spec:\n  model:\n    source: ./random.gguf\n---\n${HEAD.replace("name: m", "name: other")}spec:\n  model: { source: file://${paths.truncatedModel} }\n`,
  );
}, 120_000);

describe("bad model files are refused before anything loads them", () => {
  test("berth serve: random bytes, cut off, version 99: one line naming the file, exit 2", async () => {
    const cases: Array<[string, RegExp]> = [
      [paths.randomModel, /the file is not a GGUF model: it starts with bytes [0-9a-f]+ instead of "GGUF"/],
      [paths.truncatedModel, /the GGUF file ends before its declared contents/],
      [paths.futureModel, /the GGUF version is not supported: version 99/],
    ];
    const runs = await runAll(cases.map(([path]) => ["serve", "--model", path, "--port", "0"]));
    for (const [index, [path, expected]] of cases.entries()) {
      const run = runs[index]!;
      expect(run.hung, run.args.join(" ")).toBe(false);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stdout).toBe("");
      // One line: "berth: PATH: what: detail" — not a RangeError, not "Failed to load model".
      expect(run.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      expect(run.stderr.startsWith(`berth: ${path}: `), run.stderr).toBe(true);
      expect(run.stderr).toMatch(expected);
      expect(run.stderr).not.toMatch(/RangeError|Failed to load/);
    }
  });

  test("berth build --model: a broken model is refused before any image work", async () => {
    const run = await berth([
      "build",
      "--model",
      paths.randomModel,
      "--tag",
      "127.0.0.1:1/berth:bad",
      "--oci-archive",
      join(directory, "image.tar"),
    ]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(run.stderr).toContain(`berth: ${paths.randomModel}: the file is not a GGUF model`);
  });

  test("berth serve: a missing file or an empty folder is one line naming it", async () => {
    const missing = join(directory, "none.gguf");
    const runs = await runAll(
      [missing, paths.folder].map((path) => ["serve", "--model", path, "--port", "0"]),
    );
    for (const [index, path] of [missing, paths.folder].entries()) {
      const run = runs[index]!;
      expect([1, 2], run.stderr).toContain(run.code);
      expect(run.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      expect(run.stderr.startsWith(`berth: ${path}: `), run.stderr).toBe(true);
    }
  });

  test("berth validate checks local model files and names the spec line", async () => {
    const run = await berth(["validate", "-f", paths.badModelSpec]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stdout).toBe("");
    const lines = run.stderr.split("\n").filter(Boolean);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(
      `berth: ${paths.badModelSpec}:7 spec.model.source: ${paths.randomModel}: the file is not a GGUF model: ${lines[0]!.split("the file is not a GGUF model: ")[1]}`,
    );
    expect(lines[1]).toMatch(
      new RegExp(
        `^${paths.badModelSpec}:14 spec\\.model\\.source: ${paths.truncatedModel}: the GGUF file ends`,
      ),
    );
  });
});

describe("no command prints a stack trace on bad input", () => {
  const sweep: string[][] = [
    ["validate", "-f", paths.missing],
    ["validate", "-f", paths.alias],
    ["validate", "-f", paths.wrongType],
    ["validate", "-f", paths.garbage],
    ["validate", "-f", paths.folder],
    ["validate"],
    ["render", "-f", paths.alias],
    ["render", "-f", paths.garbage],
    ["render", "-f", paths.good, "--format", "toml"],
    ["render", "-f", paths.good, "--helm", join(paths.randomModel, "chart")],
    ["deploy", "-f", paths.alias],
    ["deploy", "-f", paths.good, "--timeout", "soon"],
    ["deploy", "-f", paths.good, "--kubeconfig", paths.missing],
    ["deploy", "-f", paths.good, "--kubeconfig", paths.garbage],
    ["delete", "-f", paths.wrongType],
    ["delete", "-f", paths.good, "--kubeconfig", paths.missing],
    ["k8s", "status", "-f", paths.alias],
    ["k8s", "status", "-f", paths.good, "--kubeconfig", paths.garbage],
    ["model", "inspect", paths.randomModel],
    ["model", "inspect", paths.folder],
    ["model", "inspect", paths.missing],
    ["model", "tiny", "--shape", "huge"],
    ["model", "convert", paths.missing, "--out", join(directory, "out.gguf")],
    ["model", "convert", paths.folder, "--out", join(directory, "out.gguf")],
    ["model", "nope"],
    ["model", "pull", "ftp://host/model.gguf"],
    ["model", "pull", "hf://"],
    ["model", "pull", "tiny://huge"],
    ["model", "pull", paths.randomModel],
    ["model", "path", "hf://nobody/nothing"],
    ["model", "rm", "s3://"],
    ["model", "ls", "--sort", "sideways"],
    ["build", "-f", paths.alias],
    ["build", "--port", "many"],
    ["build", "-f", paths.good, "--tag", "berth:bad input"],
    ["serve", "--model", paths.garbage, "--port", "0"],
    ["serve", "--model", paths.randomModel, "--port", "nope"],
    ["serve", "--model", paths.randomModel, "--parallel", "-3"],
    ["up", "-f", paths.alias],
    ["up", "-f", paths.garbage],
    ["up", "-f", paths.missing],
    ["up", "-f", paths.good, "--port", "99999"],
    ["status"],
    ["status", "--json"],
    ["events"],
    ["logs", "m"],
    ["scale", "m", "lots"],
    ["scale", "m", "2"],
    ["apply", "-f", paths.alias],
    ["apply", "-f", paths.garbage],
    ["apply", "-f", paths.good],
    ["down"],
    ["operator", "--health-port", "abc"],
    ["operator", "--health-port", "70000"],
    ["operator", "--health-host", "not a host!"],
    ["install", "--dry-run", "--api-keys-secret", "Not_A_Secret"],
    ["no-such-command"],
    ["--no-such-flag"],
  ];

  test(`${sweep.length} commands with bad input: an error message, exit 1 or 2, no stack frame`, async () => {
    const runs = await runAll(sweep);
    const report = runs.map(
      (run) => `berth ${run.args.join(" ")} → ${run.hung ? "HUNG" : run.code}: ${run.stderr.slice(0, 400)}`,
    );
    for (const [index, run] of runs.entries()) {
      const where = report[index];
      expect(run.hung, where).toBe(false);
      expect(run.stderr, where).not.toMatch(STACK_FRAME);
      expect([1, 2], where).toContain(run.code);
      expect(run.stderr.trim().length, where).toBeGreaterThan(0);
    }
    // The cases, exactly: an alias with no anchor is a located spec error, exit 2.
    const alias = runs.find((run) => run.args[0] === "validate" && run.args[2] === paths.alias)!;
    expect(alias.code).toBe(2);
    expect(alias.stderr).toContain(`${paths.alias}:7 spec.model.source: alias *nope names no anchor`);
    const wrongType = runs.find((run) => run.args[0] === "validate" && run.args[2] === paths.wrongType)!;
    expect(wrongType.stderr).toContain(
      `${paths.wrongType}:6 spec.model.contextSize: expected a number, got the string "abc"`,
    );
    // Flags are checked before any cluster is asked: the message names the flag, exit 2.
    for (const [flag, words] of [
      ["--health-port", '--health-port must be a port number 0..65535 (0 picks a free one), not "abc"'],
      ["--health-port", '--health-port must be a port number 0..65535 (0 picks a free one), not "70000"'],
      ["--health-host", '--health-host must be an IP address or a host name, not "not a host!"'],
      ["--api-keys-secret", "--api-keys-secret must be a Secret name"],
    ] as const) {
      const run = runs.find((candidate) => candidate.args.includes(flag) && candidate.stderr.includes(words));
      expect(run?.code, `${flag}: ${words}\n${report.join("\n")}`).toBe(2);
    }
    for (const command of ["up", "apply", "render", "deploy"]) {
      const run = runs.find(
        (candidate) => candidate.args[0] === command && candidate.args[2] === paths.alias,
      );
      expect(run?.code, command).toBe(2);
    }
  });
});
