// Human log lines for a terminal, from pino's JSON lines: time, level, model/replica, message, then
// the other fields as key=value. Errors say what failed in words, with the next step when Berth knows one.

const LEVELS: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};
const COLOURS: Record<string, string> = {
  WARN: "\x1b[33m",
  ERROR: "\x1b[31m",
  FATAL: "\x1b[31m",
  DEBUG: "\x1b[2m",
};
const RESET = "\x1b[0m";

// Fields shown elsewhere in the line, or noise for a person.
const HIDDEN = new Set([
  "level",
  "time",
  "msg",
  "pid",
  "hostname",
  "component",
  "model",
  "replica",
  "name",
  "err",
  "inputs",
]);

/** What a person does next, for the events and failures that need one. */
const NEXT_STEPS: Record<string, (fields: Record<string, unknown>) => string> = {
  "replica-crash-looping": (fields) =>
    `next: berth logs ${String(fields.model ?? "MODEL")} shows why it exits; berth status shows its last lines`,
  "replica-unresponsive": () => "next: berth status; the replica is out of rotation until it answers again",
  "model-failed": () =>
    "next: fix the model source in the spec, then berth apply -f FILE (other models keep serving)",
  "request failed": (fields) =>
    `next: find every log line of this request with reqId ${String(fields.reqId ?? "")} (berth logs ${String(fields.model ?? "MODEL")})`,
  "spec change not applied": () => "next: fix the spec file; the running models are unchanged",
};

export interface PrettyOptions {
  colour?: boolean;
}

/** One JSON log line → one human line (undefined for a line that is not JSON: printed as it is by callers). */
export function formatLogLine(json: string, options: PrettyOptions = {}): string | undefined {
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(json) as Record<string, unknown>;
  } catch {
    const text = json.trimEnd();
    return text.length > 0 ? text : undefined;
  }
  const time = typeof fields.time === "number" ? new Date(fields.time) : new Date();
  const clock = `${pad(time.getHours())}:${pad(time.getMinutes())}:${pad(time.getSeconds())}`;
  const level = LEVELS[Number(fields.level)] ?? String(fields.level ?? "INFO").toUpperCase();
  const who = [fields.model, fields.replica]
    .filter((part) => typeof part === "string" && part.length > 0)
    .join("/");
  let message = String(fields.msg ?? "");
  const err = fields.err as { message?: string; type?: string } | undefined;
  if (err?.message) message += `: ${err.message}`;
  const extras = Object.entries(fields)
    .filter(([key, value]) => !HIDDEN.has(key) && value !== undefined && value !== null)
    .map(([key, value]) => `${key}=${typeof value === "string" ? quote(value) : JSON.stringify(value)}`);
  const next = NEXT_STEPS[String(fields.event ?? "")] ?? NEXT_STEPS[message];
  const parts = [clock, level.padEnd(5), who.length > 0 ? who : "berth", message, ...extras];
  let line = parts.join("  ");
  if (next) line += `\n           ${next(fields)}`;
  const colour = options.colour ? COLOURS[level] : undefined;
  return colour ? `${colour}${line}${RESET}` : line;
}

function pad(value: number): string {
  return String(value).padStart(2, "0");
}

function quote(value: string): string {
  return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
}
