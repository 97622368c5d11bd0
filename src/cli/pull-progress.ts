// A model source pulled for a command that needs a local file (`berth serve --model`, `berth build
// --model`, `berth model pull --output`): the store's pull with the shared progress display on
// stderr, failures as one-line CliErrors (bad source or bad model: exit 2; the rest: exit 1).
import { randomUUID } from "node:crypto";
import { copyFile, link, mkdir, realpath, rename, rm } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { PulledModel } from "../models/store.js";
import { toCliError } from "./model-store.js";

export interface CliPulled {
  path: string;
  /** A name for clients when the file's own is not one (pulled files are named by hash). */
  modelId?: string;
  pulled: PulledModel;
}

/** The name a pulled model answers to by default: the source's file, without .gguf. */
export function defaultModelId(pulled: PulledModel): string | undefined {
  if (pulled.kind === "file" || pulled.kind === "tiny") return undefined;
  const source = pulled.source.replace(/[#?].*$/, "").replace(/@[^/]*$/, "");
  const name =
    pulled.file !== undefined
      ? basename(pulled.file)
      : pulled.kind === "hf"
        ? (source.split("/").pop() ?? "model").replace(/:.*$/, "")
        : basename(source);
  const id = name
    .replace(/\.gguf$/i, "")
    .replace(/[^A-Za-z0-9._:/-]/g, "-")
    .slice(0, 128);
  return id.length > 0 ? id : undefined;
}

export async function pullForCli(
  source: string,
  options: { env?: NodeJS.ProcessEnv; baseDir?: string } = {},
): Promise<CliPulled> {
  const [{ pullModel }, { createProgress, formatProgressBytes }] = await Promise.all([
    import("../models/store.js"),
    import("./progress.js"),
  ]);
  const progress = createProgress({ title: `pull ${source}`, unit: "bytes" });
  try {
    const pulled = await pullModel(source, {
      ...(options.env ? { env: options.env } : {}),
      ...(options.baseDir ? { baseDir: options.baseDir } : {}),
      onProgress: (event) => {
        if (event.phase !== "download") return;
        const label =
          event.resumedFromBytes > 0 ? `(resumed at ${formatProgressBytes(event.resumedFromBytes)})` : "";
        progress.update(label, event.receivedBytes, event.totalBytes);
      },
    });
    progress.finish();
    const modelId = defaultModelId(pulled);
    return { path: pulled.path, pulled, ...(modelId === undefined ? {} : { modelId }) };
  } catch (error) {
    progress.finish();
    throw toCliError(error);
  }
}

/**
 * Puts a pulled file at `output` atomically: a hard link when both are on one file system (no
 * second copy of a large model), a copy otherwise; never a half-written file at `output`.
 */
export async function placeModelFile(from: string, output: string): Promise<void> {
  await mkdir(dirname(output), { recursive: true });
  const temporary = `${output}.${randomUUID().slice(0, 8)}.tmp`;
  // The Hugging Face cache hands out a relative symlink (snapshots/… → ../../blobs/…); link(2)
  // would copy the link itself, dangling at its new place: link the file it points to.
  const file = await realpath(from);
  try {
    await link(file, temporary).catch(async (error: NodeJS.ErrnoException) => {
      if (!["EXDEV", "EPERM", "EMLINK", "ENOTSUP", "EOPNOTSUPP"].includes(error.code ?? "")) throw error;
      await copyFile(file, temporary);
    });
    await rename(temporary, output);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
