// `berth model ...`: model files. `tiny` writes a random-weight GPT-2-architecture test model,
// `inspect` describes a GGUF file from its header. (`pull` and `convert` belong here later.)
import { resolve } from "node:path";
import type { Command } from "commander";
import { ModelError } from "../models/errors.js";
import type { ModelSummary } from "../models/inspect.js";
import { TINY_DTYPES, TINY_SHAPES, type TinyDtype, type TinyShapeName } from "../models/tiny.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";
import { registerStoreCommands } from "./model-store.js";

// Above this size the writer reports progress on stderr.
const PROGRESS_MIN_BYTES = 32 * 1024 * 1024;

/** ModelErrors about the input file are the user's to fix: exit 2 with one line. */
function toCliError(error: unknown): unknown {
  if (error instanceof ModelError) {
    return new CliError(`${error.message} (${error.code})`, EXIT_USAGE);
  }
  return error;
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

function formatCount(count: number): string {
  if (count >= 1e9) return `${(count / 1e9).toFixed(2)}B`;
  if (count >= 1e6) return `${(count / 1e6).toFixed(1)}M`;
  if (count >= 1e3) return `${(count / 1e3).toFixed(1)}K`;
  return String(count);
}

export function formatSummary(summary: ModelSummary): string {
  const dash = (value: number | string | undefined): string => (value === undefined ? "-" : String(value));
  const heads =
    summary.headsKv !== undefined && summary.headsKv !== summary.heads
      ? `${dash(summary.heads)} (kv ${summary.headsKv})`
      : dash(summary.heads);
  const lines = [
    `file:          ${summary.path}`,
    `size:          ${formatBytes(summary.fileSizeBytes)} (${summary.fileSizeBytes} bytes, GGUF v${summary.ggufVersion})`,
    `architecture:  ${summary.architecture}${summary.name ? ` (${summary.name})` : ""}${summary.generative ? "" : " [not generative]"}`,
    `layers:        ${dash(summary.layers)}`,
    `embedding:     ${dash(summary.embedding)}`,
    `heads:         ${heads}`,
    `feed forward:  ${dash(summary.feedForward)}`,
    `context:       ${dash(summary.contextLength)}`,
    `vocab:         ${dash(summary.vocabSize)}`,
    `tokenizer:     ${dash(summary.tokenizerModel)}${summary.tokenizerPre ? ` (pre ${summary.tokenizerPre})` : ""}${summary.hasChatTemplate ? ", chat template" : ""}`,
    `parameters:    ${formatCount(summary.parameterCount)} (${summary.parameterCount})`,
    `file type:     ${summary.fileType}`,
    `tensors:       ${summary.tensorCount} (${Object.entries(summary.tensorTypes)
      .map(([type, count]) => `${type} ${count}`)
      .join(", ")})`,
  ];
  return `${lines.join("\n")}\n`;
}

interface TinyOptions {
  shape: string;
  dtype: string;
  out: string;
  chatTemplate?: string;
  json?: boolean;
}

async function writeTiny(options: TinyOptions): Promise<void> {
  if (!(options.shape in TINY_SHAPES)) {
    throw new CliError(
      `unknown --shape "${options.shape}" (one of: ${Object.keys(TINY_SHAPES).join(", ")})`,
      EXIT_USAGE,
    );
  }
  if (!TINY_DTYPES.includes(options.dtype as TinyDtype)) {
    throw new CliError(`unknown --dtype "${options.dtype}" (one of: ${TINY_DTYPES.join(", ")})`, EXIT_USAGE);
  }
  const { writeTinyModelAtomically } = await import("../models/tiny.js");
  const out = resolve(options.out);
  const started = performance.now();
  let reportedTenth = -1;
  const result = await writeTinyModelAtomically(
    out,
    {
      shape: options.shape as TinyShapeName,
      dtype: options.dtype as TinyDtype,
      ...(options.chatTemplate !== undefined ? { chatTemplate: options.chatTemplate } : {}),
    },
    ({ bytesWritten, totalBytes }) => {
      if (totalBytes < PROGRESS_MIN_BYTES) return;
      const tenth = Math.floor((bytesWritten / totalBytes) * 10);
      if (tenth === reportedTenth) return;
      reportedTenth = tenth;
      process.stderr.write(`writing ${out}: ${tenth * 10}% of ${formatBytes(totalBytes)}\n`);
    },
  ).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR") {
      throw new CliError(`cannot write ${out}: ${(error as Error).message}`, EXIT_FAILURE);
    }
    throw error;
  });
  const seconds = (performance.now() - started) / 1000;
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ path: out, shape: options.shape, dtype: options.dtype, bytes: result.bytes, seconds })}\n`,
    );
  } else {
    process.stdout.write(
      `wrote ${out} (${options.shape}, ${options.dtype}, ${formatBytes(result.bytes)}) in ${seconds.toFixed(1)} s\n`,
    );
  }
}

async function inspect(file: string, options: { json?: boolean }): Promise<void> {
  const { inspectModel } = await import("../models/inspect.js");
  const summary = await inspectModel(resolve(file)).catch((error: unknown) => {
    throw toCliError(error);
  });
  process.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
}

interface ConvertCliOptions {
  out: string;
  dtype: string;
  json?: boolean;
}

async function convert(input: string, options: ConvertCliOptions): Promise<void> {
  const { CONVERT_DTYPES } = await import("../models/convert/index.js");
  if (!CONVERT_DTYPES.includes(options.dtype as never)) {
    throw new CliError(
      `unknown --dtype "${options.dtype}" (one of: ${CONVERT_DTYPES.join(", ")})`,
      EXIT_USAGE,
    );
  }
  const { convertSource } = await import("../models/convert/source.js");
  const { createProgress } = await import("./progress.js");
  const { toCliError: storeCliError } = await import("./model-store.js");
  const progress = createProgress({ title: "convert", unit: "bytes" });
  const started = performance.now();
  const result = await convertSource(input, resolve(options.out), {
    dtype: options.dtype as "f32" | "f16" | "q8_0",
    onProgress: ({ tensor, tensorIndex, tensorCount, bytesWritten, totalBytes }) =>
      progress.update(
        tensorCount > 0 ? `tensor ${tensorIndex + 1}/${tensorCount} ${tensor}` : "converting",
        bytesWritten,
        totalBytes,
      ),
  }).catch((error: unknown) => {
    progress.finish();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR" || code === "ENOSPC") {
      throw new CliError(`cannot write ${resolve(options.out)}: ${(error as Error).message}`, EXIT_FAILURE);
    }
    throw storeCliError(error);
  });
  progress.finish();
  const seconds = (performance.now() - started) / 1000;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ ...result, dtype: options.dtype, seconds })}\n`);
  } else {
    process.stdout.write(
      `wrote ${result.path} (${result.architecture}, ${options.dtype}, ${result.tensors} tensors, ${formatBytes(result.bytes)}) in ${seconds.toFixed(1)} s\n`,
    );
  }
}

export function register(program: Command): void {
  const model = program
    .command("model")
    .description("Model files: inspect GGUF files, write tiny test models");

  model
    .command("tiny")
    .description("Write a deterministic random-weight GPT-2-architecture model with GPT-2's real tokenizer")
    .option("--shape <shape>", `model shape: ${Object.keys(TINY_SHAPES).join(" | ")}`, "tiny")
    .option("--dtype <dtype>", `weight type of the matrices: ${TINY_DTYPES.join(" | ")}`, "f16")
    .requiredOption("--out <file>", "where to write the .gguf file")
    .option("--chat-template <template>", "a Jinja chat template to store as tokenizer.chat_template")
    .option("--json", "print the result as JSON")
    .action(async (options: TinyOptions) => writeTiny(options));

  model
    .command("convert")
    .description(
      "Convert a Hugging Face checkpoint (config.json, safetensors, tokenizer) to GGUF: GPT-2, Llama, Mistral, Qwen2",
    )
    .argument("<checkpoint>", "a checkpoint directory, or a model source (hf://org/repo[@rev], file://DIR)")
    .requiredOption("--out <file>", "where to write the .gguf file")
    .option("--dtype <dtype>", "weight type of the matrices: f32 | f16 | q8_0", "f16")
    .option("--json", "print the result as JSON")
    .action(async (input: string, options: ConvertCliOptions) => convert(input, options));

  registerStoreCommands(model);

  model
    .command("inspect")
    .description("Describe a GGUF model: architecture, shape, parameters, types, tokenizer")
    .argument("<file>", "a .gguf file")
    .option("--json", "print the summary as JSON")
    .action(async (file: string, options: { json?: boolean }) => inspect(file, options));
}
