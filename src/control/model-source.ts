// Turns a spec's model source into a file this machine can load, for the local runtime:
// tiny://SHAPE?dtype=D is generated (cached) on first use, file:// and paths resolve from the spec.
import { stat } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ModelSourceError } from "../models/errors.js";
import { parseTinySource } from "../models/sources.js";
import { ensureTinyModel } from "../models/tiny.js";

// Source parsing lives in src/models/sources.ts; re-exported for this file's callers.
export { ModelSourceError } from "../models/errors.js";
export { parseTinySource } from "../models/sources.js";

/**
 * A local file for the source. Relative paths are relative to the spec file's directory.
 * hf:// and https:// are not fetched here: pull them first and point the spec at the file.
 */
export async function resolveLocalModel(source: string, specFile: string): Promise<string> {
  const tiny = parseTinySource(source);
  if (tiny) return ensureTinyModel(tiny);
  if (/^(hf|https?):\/\//.test(source)) {
    throw new ModelSourceError(
      "BERTH_MODEL_SOURCE",
      `${source}: berth up runs local files and tiny:// models; download it and use file://PATH`,
    );
  }
  const path = source.startsWith("file://")
    ? source.startsWith("file:///")
      ? fileURLToPath(source)
      : source.slice("file://".length)
    : source;
  const absolute = isAbsolute(path) ? path : resolve(dirname(resolve(specFile)), path);
  try {
    if (!(await stat(absolute)).isFile()) throw new Error("not a file");
  } catch {
    throw new ModelSourceError("BERTH_MODEL_SOURCE_NOT_FOUND", `${source}: no model file at ${absolute}`);
  }
  return absolute;
}
