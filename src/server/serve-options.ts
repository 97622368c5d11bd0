// `berth serve` flags as commander hands them over (strings) → checked, typed settings.
// Pure: the CLI turns a failure into a usage error that names the flag.

import { z } from "zod";
import { parseDuration, parseMemory } from "../spec/units.js";

function integer(flag: string, min: number, max: number) {
  return z
    .string()
    .regex(/^\d+$/, `${flag} must be a whole number`)
    .transform(Number)
    .pipe(
      z.number().int().min(min, `${flag} must be at least ${min}`).max(max, `${flag} must be at most ${max}`),
    );
}

function duration(flag: string) {
  return z.string().transform((text, context) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      context.addIssue({ code: "custom", message: `${flag} must be a duration such as 30s, 500ms or 2m` });
      return z.NEVER;
    }
    return ms;
  });
}

const rawServeOptions = z.object({
  model: z.string().min(1, "--model is required"),
  host: z.string().min(1),
  port: integer("--port", 0, 65535),
  parallel: integer("--parallel", 1, 256),
  ctx: integer("--ctx", 2, 1 << 20).optional(),
  threads: integer("--threads", 1, 1024).optional(),
  modelId: z
    .string()
    .regex(/^[A-Za-z0-9._:/-]{1,128}$/, "--model-id may use letters, digits and . _ : / - (at most 128)")
    .optional(),
  maxQueue: integer("--max-queue", 0, 1_000_000).optional(),
  gracePeriod: duration("--grace-period"),
  requestTimeout: duration("--request-timeout"),
  bodyLimit: z.string().transform((text, context) => {
    const bytes = parseMemory(text);
    if (bytes === undefined || bytes < 1) {
      context.addIssue({ code: "custom", message: "--body-limit must be a size such as 1048576 or 1Mi" });
      return z.NEVER;
    }
    return bytes;
  }),
  logPrompts: z.boolean().optional(),
  prefixReuse: z.boolean().optional(),
});

export type RawServeOptions = z.input<typeof rawServeOptions>;

export interface ServeSettings {
  modelPath: string;
  host: string;
  port: number;
  parallel: number;
  contextPerSequence: number | undefined;
  threads: number | undefined;
  modelId: string | undefined;
  maxQueue: number | undefined;
  gracePeriodMs: number;
  requestTimeoutMs: number;
  bodyLimitBytes: number;
  logPrompts: boolean;
  prefixReuse: boolean;
}

export type ParsedServeOptions = { ok: true; settings: ServeSettings } | { ok: false; message: string };

export function parseServeOptions(raw: RawServeOptions): ParsedServeOptions {
  const parsed = rawServeOptions.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, message: parsed.error.issues.map((issue) => issue.message).join("; ") };
  }
  const options = parsed.data;
  return {
    ok: true,
    settings: {
      modelPath: options.model,
      host: options.host,
      port: options.port,
      parallel: options.parallel,
      contextPerSequence: options.ctx,
      threads: options.threads,
      modelId: options.modelId,
      maxQueue: options.maxQueue,
      gracePeriodMs: options.gracePeriod,
      requestTimeoutMs: options.requestTimeout,
      bodyLimitBytes: options.bodyLimit,
      logPrompts: options.logPrompts ?? false,
      prefixReuse: options.prefixReuse ?? true,
    },
  };
}
