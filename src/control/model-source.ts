// Resolves a spec's model sources for `berth up` through the one model store (pullModel): every
// distinct source once (never once per replica), before any replica starts. A source that cannot be
// had is a failure of that model only (DeploymentToApply.modelFailure), not of the whole spec.
import { dirname, resolve } from "node:path";
import { ModelError, ModelSourceError } from "../models/errors.js";
import type { PulledModel, PullProgress } from "../models/store.js";
import type { ModelFailure } from "./controller.js";

export { ModelSourceError };

export interface ResolveSourcesOptions {
  /** The spec file: relative paths and file:// URIs are relative to its folder. */
  specFile: string;
  env?: NodeJS.ProcessEnv;
  /** Progress of each source's pull (resolve, download, check). */
  onProgress?: (source: string, progress: PullProgress) => void;
  /** Called once per source when its pull ends (cached or downloaded). */
  onPulled?: (pulled: PulledModel) => void;
  signal?: AbortSignal;
}

export type ResolvedSource = { ok: true; pulled: PulledModel } | { ok: false; failure: ModelFailure };

/** One line and a stable code for any failure of a pull (source, network, cache, model check). */
export function modelFailureOf(source: string, error: unknown): ModelFailure {
  if (error instanceof ModelSourceError || error instanceof ModelError) {
    return { code: error.code, message: error.message };
  }
  const detail = error instanceof Error ? error.message : String(error);
  return { code: "BERTH_MODEL_SOURCE", message: `${source}: ${detail.split("\n")[0]}` };
}

/**
 * Pulls each distinct source once, one after another (one progress display at a time), and
 * reports each as a local path or a failure. Never throws for a source's own failure.
 */
export async function resolveModelSources(
  sources: readonly string[],
  options: ResolveSourcesOptions,
): Promise<Map<string, ResolvedSource>> {
  const { pullModel } = await import("../models/store.js");
  const baseDir = dirname(resolve(options.specFile));
  const results = new Map<string, ResolvedSource>();
  for (const source of sources) {
    if (results.has(source)) continue;
    options.signal?.throwIfAborted();
    try {
      const pulled = await pullModel(source, {
        baseDir,
        ...(options.env ? { env: options.env } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onProgress
          ? { onProgress: (progress: PullProgress) => options.onProgress?.(source, progress) }
          : {}),
      });
      options.onPulled?.(pulled);
      results.set(source, { ok: true, pulled });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      results.set(source, { ok: false, failure: modelFailureOf(source, error) });
    }
  }
  return results;
}
