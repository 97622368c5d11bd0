// Turns a spec's model source into a file this machine can load, for the local runtime:
// tiny://SHAPE?dtype=D is generated (cached) on first use, file:// and paths resolve from the spec.
import { stat } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ensureTinyModel,
  TINY_DTYPES,
  TINY_SHAPES,
  type TinyDtype,
  type TinyShapeName,
} from "../models/tiny.js";

export class ModelSourceError extends Error {
  readonly code = "BERTH_MODEL_SOURCE";
  constructor(message: string) {
    super(message);
    this.name = "ModelSourceError";
  }
}

/** Parses tiny://SHAPE[?dtype=D]; undefined when the source is not a tiny:// one. */
export function parseTinySource(source: string): { shape: TinyShapeName; dtype: TinyDtype } | undefined {
  if (!source.startsWith("tiny://")) return undefined;
  const url = new URL(source);
  const shape = url.hostname || url.pathname.replace(/^\/+/, "");
  if (!(shape in TINY_SHAPES)) {
    throw new ModelSourceError(
      `${source}: unknown tiny shape "${shape}" (one of ${Object.keys(TINY_SHAPES).join(", ")})`,
    );
  }
  const dtype = url.searchParams.get("dtype") ?? "f16";
  if (!(TINY_DTYPES as readonly string[]).includes(dtype)) {
    throw new ModelSourceError(`${source}: unknown dtype "${dtype}" (one of ${TINY_DTYPES.join(", ")})`);
  }
  return { shape: shape as TinyShapeName, dtype: dtype as TinyDtype };
}

/**
 * A local file for the source. Relative paths are relative to the spec file's directory.
 * hf:// and https:// are not fetched here: pull them first and point the spec at the file.
 */
export async function resolveLocalModel(source: string, specFile: string): Promise<string> {
  const tiny = parseTinySource(source);
  if (tiny) return ensureTinyModel(tiny);
  if (/^(hf|https?):\/\//.test(source)) {
    throw new ModelSourceError(
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
    throw new ModelSourceError(`${source}: no model file at ${absolute}`);
  }
  return absolute;
}
