// The one logger factory: pino with secrets redacted before they are written, in one of three
// formats: JSON lines (machines, `| cat`), ECS JSON (Elastic/Filebeat without a pipeline) or
// human lines (a person at a terminal). Prompts and completions are never passed to the logger by default.
import { ecsFormat } from "@elastic/ecs-pino-format";
import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";
import { formatLogLine } from "./log-pretty.js";

export type { Logger };

export const LOG_FORMATS = ["auto", "pretty", "json", "ecs"] as const;
export type LogFormatChoice = (typeof LOG_FORMATS)[number];
export type LogFormat = Exclude<LogFormatChoice, "auto">;

export const REDACT_PATHS = [
  "req.headers.authorization",
  "headers.authorization",
  "authorization",
  "apiKey",
  "apiKeys",
  "*.apiKey",
];

// ECS top-level fields that are objects: a plain value under one of these names would make
// Elasticsearch reject the document (mapping conflict), so such values move to where ECS wants them.
const ECS_OBJECT_FIELDS = new Set([
  "agent",
  "client",
  "cloud",
  "container",
  "destination",
  "dns",
  "email",
  "error",
  "event",
  "file",
  "group",
  "host",
  "http",
  "log",
  "network",
  "observer",
  "orchestrator",
  "organization",
  "package",
  "process",
  "related",
  "rule",
  "server",
  "service",
  "source",
  "span",
  "threat",
  "tls",
  "trace",
  "transaction",
  "url",
  "user",
  "user_agent",
]);
const ECS_RENAMES: Record<string, [string, string]> = {
  url: ["url", "full"],
  event: ["event", "action"],
  file: ["file", "path"],
};

/** Berth's log fields made ECS-safe: url → url.full, event → event.action, file → file.path, other clashes → berth.*. */
export function ecsSafeFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const berth: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (!ECS_OBJECT_FIELDS.has(key) || (typeof value === "object" && value !== null)) {
      out[key] = value;
      continue;
    }
    const rename = ECS_RENAMES[key];
    if (rename) out[rename[0]] = { [rename[1]]: value };
    else berth[key] = value;
  }
  if (Object.keys(berth).length > 0) out.berth = berth;
  return out;
}

function ecsOptions(): LoggerOptions {
  const ecs = ecsFormat({ convertErr: true, apmIntegration: false, serviceName: "berth" });
  const ecsLog = ecs.formatters?.log;
  return {
    ...ecs,
    formatters: {
      ...ecs.formatters,
      log: (fields) => {
        const safe = ecsSafeFields(fields);
        return ecsLog ? ecsLog(safe) : safe;
      },
    },
  };
}

/** `--log-format`: auto is human lines on a terminal, JSON lines otherwise. Undefined: not a format. */
export function resolveLogFormat(value: string, isTty: boolean): LogFormat | undefined {
  if (!(LOG_FORMATS as readonly string[]).includes(value)) return undefined;
  if (value === "auto") return isTty ? "pretty" : "json";
  return value as LogFormat;
}

export function createLogger(
  options: LoggerOptions = {},
  destination?: NodeJS.WritableStream | DestinationStream,
  format: LogFormat = "json",
): Logger {
  const base: LoggerOptions = {
    level: process.env.BERTH_LOG_LEVEL ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    ...(format === "ecs" ? ecsOptions() : {}),
    ...options,
  };
  if (format === "pretty") {
    const target = destination ?? process.stdout;
    // pino writes one JSON line per call: turned into a human line before it reaches the terminal.
    return pino(base, {
      write(line: string) {
        const human = formatLogLine(line);
        if (human !== undefined) target.write(`${human}\n`);
      },
    });
  }
  return destination ? pino(base, destination) : pino(base);
}
