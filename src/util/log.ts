// The one logger factory: JSON lines (pino) with secrets redacted before they are written.
// Prompts and completions are never passed to the logger by default.
import { type Logger, type LoggerOptions, pino } from "pino";

export type { Logger };

export const REDACT_PATHS = [
  "req.headers.authorization",
  "headers.authorization",
  "authorization",
  "apiKey",
  "apiKeys",
  "*.apiKey",
];

export function createLogger(options: LoggerOptions = {}, destination?: NodeJS.WritableStream): Logger {
  const base: LoggerOptions = {
    level: process.env.BERTH_LOG_LEVEL ?? "info",
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    ...options,
  };
  return destination ? pino(base, destination) : pino(base);
}
