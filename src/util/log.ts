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
    ...(format === "ecs" ? ecsFormat({ convertErr: true, apmIntegration: false, serviceName: "berth" }) : {}),
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
