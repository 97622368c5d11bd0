// podman for the image tests, set up as shared/notes/containers.md says it must be here: runtime runc,
// lower default ulimits, and --root/--runroot/--tmpdir/--network-config-dir as flags (each test gets
// its own store in a temp dir, so loads are verified against an empty store), TMPDIR set too.
import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { freePort } from "../support/net.js";

export { freePort };

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Why the container tests cannot run here, or undefined when podman, runc and skopeo are present. */
export function containerToolsMissing(): string | undefined {
  for (const [tool, args] of [
    ["podman", ["--version"]],
    ["runc", ["--version"]],
    ["skopeo", ["--version"]],
  ] as const) {
    const probe = spawnSync(tool, args, { encoding: "utf8" });
    if (probe.error || probe.status !== 0) {
      return `${tool} is not installed (apt-get install podman runc skopeo umoci docker-registry apache2-utils)`;
    }
  }
  return undefined;
}

export function run(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 600_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
        ...(options.cwd ? { cwd: options.cwd } : {}),
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export async function runOk(
  command: string,
  args: readonly string[],
  options: Parameters<typeof run>[2] = {},
): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${result.code}:\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`,
    );
  }
  return result.stdout;
}

const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
events_logger = "file"
`;

/** A podman with a store of its own under `dir`. */
export class Podman {
  readonly env: NodeJS.ProcessEnv;
  private readonly flags: string[];

  constructor(readonly dir: string) {
    for (const sub of ["root", "runroot", "tmp", "net"]) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, "containers.conf"), CONTAINERS_CONF);
    this.env = { ...process.env, CONTAINERS_CONF: join(dir, "containers.conf"), TMPDIR: join(dir, "tmp") };
    this.flags = [
      "--root",
      join(dir, "root"),
      "--runroot",
      join(dir, "runroot"),
      "--tmpdir",
      join(dir, "tmp"),
      "--network-config-dir",
      join(dir, "net"),
      "--runtime",
      "runc",
    ];
  }

  /** `storage` for skopeo's containers-storage: transport, pointing at this store. */
  get storageSpec(): string {
    return `[overlay@${join(this.dir, "root")}+${join(this.dir, "runroot")}]`;
  }

  run(args: readonly string[], timeoutMs?: number): Promise<CommandResult> {
    return run("podman", [...this.flags, ...args], { env: this.env, ...(timeoutMs ? { timeoutMs } : {}) });
  }

  ok(args: readonly string[], timeoutMs?: number): Promise<string> {
    return runOk("podman", [...this.flags, ...args], { env: this.env, ...(timeoutMs ? { timeoutMs } : {}) });
  }

  /** Removes every container and image of this store, then the store itself. */
  async destroy(): Promise<void> {
    await this.run(["rm", "--all", "--force", "--time", "0"], 60_000);
    await this.run(["system", "reset", "--force"], 120_000);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Polls `check` until it returns a value or `timeoutMs` passes; the last error explains a timeout. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`,
  );
}

/** POSTs the seed's /generate form and returns the parsed answer. */
export async function postGenerate(port: number, text: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`http://127.0.0.1:${port}/generate`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ text, max_length: "8" }).toString(),
  });
  return { status: response.status, body: await response.json() };
}
