// `berth model convert DIR|SOURCE`: a checkpoint directory converts as it is; a model source goes
// through the store first (pullModel fetches a checkpoint snapshot and converts it, cached).
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { ModelSourceError } from "../errors.js";
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
  if (source.kind === "file") {
    return convertCheckpoint(resolve(source.path), out, options);
  }
  throw new ModelSourceError(
    "BERTH_MODEL_SOURCE",
    `${input}: converting a ${source.kind} source needs the model store; pull it first or give a checkpoint directory`,
  );
}
