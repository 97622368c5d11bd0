// `berth model convert DIR|SOURCE`: a checkpoint directory (or file:// one) converts as it is; any
// other source goes through the store (pullModel fetches the checkpoint into the HF cache and
// converts it, cached by commit and dtype) and the result is copied to --out.
import { copyFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { readGguf } from "../gguf.js";
import { parseModelSource } from "../sources.js";
import { type ConvertOptions, type ConvertResult, convertCheckpoint } from "./index.js";

export async function convertSource(
  input: string,
  out: string,
  options: ConvertOptions,
): Promise<ConvertResult> {
  const asPath = await stat(resolve(input)).catch(() => undefined);
  if (asPath?.isDirectory()) return convertCheckpoint(resolve(input), out, options);
  const source = parseModelSource(input);
  if (source.kind === "file" && (await stat(resolve(source.path)).catch(() => undefined))?.isDirectory()) {
    return convertCheckpoint(resolve(source.path), out, options);
  }
  const { pullModel } = await import("../store.js");
  const pulled = await pullModel(input, {
    dtype: options.dtype,
    onProgress: (progress) => {
      if (progress.phase === "convert" && progress.totalBytes !== undefined) {
        options.onProgress?.({
          tensor: "",
          tensorIndex: 0,
          tensorCount: 0,
          bytesWritten: progress.receivedBytes,
          totalBytes: progress.totalBytes,
        });
      }
    },
  });
  const target = resolve(out);
  const temp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
  try {
    await copyFile(pulled.path, temp);
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  const file = await readGguf(target);
  return {
    path: target,
    architecture: String(file.metadata.get("general.architecture")?.value ?? "unknown"),
    tensors: file.tensors.length,
    bytes: pulled.sizeBytes,
  };
}
