// `berth model pull|ls|rm|path`: the model store on the command line. Thin: parse, call
// src/models/store.ts, print; errors become one line with the store's code, never a stack.
import type { Command } from "commander";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";

export function toCliError(error: unknown): unknown {
  const code = (error as { code?: unknown }).code;
  const name = (error as { name?: unknown }).name;
  if (name === "ModelSourceError" || name === "ModelError") {
    const usage = code === "BERTH_MODEL_SOURCE" || name === "ModelError";
    return new CliError(`${(error as Error).message} (${String(code)})`, usage ? EXIT_USAGE : EXIT_FAILURE);
  }
  if ((error as Error)?.name === "AbortError") {
    return new CliError("interrupted; pulling again resumes where it stopped", EXIT_FAILURE);
  }
  return error;
}

interface PullCliOptions {
  json?: boolean;
  /** Also place the file here (hard link, else copy): what the Kubernetes init container runs. */
  output?: string;
  refresh?: boolean;
  offline?: boolean;
}

async function pull(source: string, options: PullCliOptions): Promise<void> {
  const [{ pullModel }, { createProgress, formatProgressBytes }] = await Promise.all([
    import("../models/store.js"),
    import("./progress.js"),
  ]);
  const progress = createProgress({ title: `pull ${source}`, unit: "bytes" });
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const started = performance.now();
  let checkStarted: number | undefined;
  try {
    const pulled = await pullModel(source, {
      signal: abort.signal,
      ...(options.refresh ? { refresh: true } : {}),
      ...(options.offline ? { offline: true } : {}),
      onProgress: (event) => {
        if (event.phase === "check") checkStarted ??= performance.now();
        if (event.phase === "download") {
          const label =
            event.resumedFromBytes > 0 ? `(resumed at ${formatProgressBytes(event.resumedFromBytes)})` : "";
          progress.update(label, event.receivedBytes, event.totalBytes);
        }
      },
    });
    progress.finish();
    if (options.output !== undefined) {
      const { placeModelFile } = await import("./pull-progress.js");
      const { resolve } = await import("node:path");
      const output = resolve(options.output);
      try {
        await placeModelFile(pulled.path, output);
      } catch (error) {
        throw new CliError(`cannot write ${output}: ${(error as Error).message}`, EXIT_FAILURE);
      }
      pulled.path = output;
    }
    const seconds = (performance.now() - started) / 1000;
    if (options.json) {
      // Where the time went: fetching (with sha256) vs the model check.
      const checkSeconds = checkStarted === undefined ? 0 : (performance.now() - checkStarted) / 1000;
      process.stdout.write(
        `${JSON.stringify({ ...pulled, seconds, fetchSeconds: seconds - checkSeconds, checkSeconds })}\n`,
      );
      return;
    }
    const facts = [
      formatProgressBytes(pulled.sizeBytes),
      pulled.revision ? `revision ${pulled.revision.slice(0, 12)}` : undefined,
      pulled.sha256 ? `sha256 ${pulled.sha256.slice(0, 12)}` : undefined,
      pulled.fromCache ? "cached" : `${seconds.toFixed(1)} s`,
    ].filter(Boolean);
    process.stdout.write(`${pulled.path}\n`);
    process.stderr.write(`${pulled.fromCache ? "cached" : "pulled"} ${source} (${facts.join(", ")})\n`);
  } catch (error) {
    progress.finish();
    throw toCliError(error);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function age(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

async function list(options: { json?: boolean }): Promise<void> {
  const [{ listCached, cacheLocations }, { formatProgressBytes }] = await Promise.all([
    import("../models/store.js"),
    import("./progress.js"),
  ]);
  const records = await listCached();
  if (options.json) {
    process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
    return;
  }
  if (records.length === 0) {
    const where = await cacheLocations();
    process.stdout.write(`no models cached (Berth: ${where.berth}, Hugging Face: ${where.huggingFace})\n`);
    return;
  }
  const rows = [
    ["SOURCE", "REVISION", "FILE", "SIZE", "QUANT", "LAST USED"],
    ...records.map((record) => [
      record.source,
      record.revision ? record.revision.slice(0, 12) : "-",
      record.file ?? record.path.split("/").pop() ?? "-",
      formatProgressBytes(record.sizeBytes),
      record.quantization ?? "-",
      age(record.lastUsedAt),
    ]),
  ];
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  for (const row of rows) {
    process.stdout.write(
      `${row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join("  ")
        .trimEnd()}\n`,
    );
  }
}

const DURATION = /^(\d+)(s|m|h|d)$/;

async function remove(
  source: string | undefined,
  options: { unused?: boolean; olderThan: string; json?: boolean },
) {
  const { removePulled, listPulled } = await import("../models/store.js");
  if ((source === undefined) === !options.unused) {
    throw new CliError("give a SOURCE or --unused (not both)", EXIT_USAGE);
  }
  let sources: string[];
  if (options.unused) {
    const match = DURATION.exec(options.olderThan);
    if (!match)
      throw new CliError(
        `--older-than "${options.olderThan}": expected a number and s|m|h|d, e.g. 30d`,
        EXIT_USAGE,
      );
    const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as "s" | "m" | "h" | "d"];
    const cutoff = Date.now() - Number(match[1]) * unit * 1000;
    sources = (await listPulled())
      .filter((record) => Date.parse(record.lastUsedAt) < cutoff)
      .map((r) => r.source);
  } else {
    sources = [source as string];
  }
  const removed: string[] = [];
  for (const each of sources) {
    try {
      const result = await removePulled(each);
      removed.push(...result.removed.map((record) => record.source));
    } catch (error) {
      throw toCliError(error);
    }
  }
  if (options.json) process.stdout.write(`${JSON.stringify({ removed })}\n`);
  else if (removed.length === 0) process.stdout.write("nothing to remove\n");
  else for (const each of removed) process.stdout.write(`removed ${each}\n`);
}

async function path(source: string): Promise<void> {
  const { pullModel } = await import("../models/store.js");
  try {
    const pulled = await pullModel(source, { offline: true });
    process.stdout.write(`${pulled.path}\n`);
  } catch (error) {
    throw toCliError(error);
  }
}

/** Adds pull, ls, rm and path under `berth model`. */
export function registerStoreCommands(model: Command): void {
  model
    .command("pull")
    .description(
      "Download a model into the cache (hf://ORG/REPO[:QUANT|/FILE][@REV], https://, s3://) and check it",
    )
    .argument("<source>", "a model source URI")
    .option("--json", "print the result as JSON")
    .option("--output <path>", "also put the model file at this path (a hard link when it can, else a copy)")
    .option("--refresh", "hf:// on a branch: ask the hub for its latest commit even when cached")
    .option("--offline", "use the cache only (like HF_HUB_OFFLINE=1)")
    .action(async (source: string, options: PullCliOptions) => pull(source, options));

  model
    .command("ls")
    .description("List cached models: source, revision, file, size, quantization, last used")
    .option("--json", "print the list as JSON")
    .action(async (options: { json?: boolean }) => list(options));

  model
    .command("rm")
    .description("Remove a cached model (its pull record and, unless shared, its file)")
    .argument("[source]", "the source as `berth model ls` shows it")
    .option("--unused", "remove every model not used for --older-than")
    .option("--older-than <duration>", "with --unused: 30d, 12h, 90m", "30d")
    .option("--json", "print what was removed as JSON")
    .action(
      async (source: string | undefined, options: { unused?: boolean; olderThan: string; json?: boolean }) =>
        remove(source, options),
    );

  model
    .command("path")
    .description("Print the local file of a cached model (never downloads)")
    .argument("<source>", "a model source URI")
    .action(async (source: string) => path(source));
}
