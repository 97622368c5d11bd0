// The log tail of one replica (GET /api/logs), refreshed while it is chosen. Replica logs are
// JSON lines (pino or ECS): shown as "time level message" plus the other fields, as text.
import { ApiError, getJson } from "./api.js";
import { element } from "./dom.js";

const TAIL = 200;
const LEVELS = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };

export function formatLine(line) {
  let record;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (!record || typeof record !== "object" || Array.isArray(record)) return line;
  // pino's fields (time, level, msg) or Elastic Common Schema's (@timestamp, log.level, message).
  const {
    time,
    level,
    msg,
    pid,
    hostname,
    "@timestamp": timestamp,
    "log.level": ecsLevel,
    message,
    ...rest
  } = record;
  const at = time ?? timestamp;
  const when = at === undefined ? "" : new Date(at).toLocaleTimeString();
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : "";
  return `${when} ${LEVELS[level] ?? level ?? ecsLevel ?? ""} ${msg ?? message ?? ""}${extra}`.trim();
}

/** Fills the replica picker from GET /api/status, keeping the choice while the replica exists. */
export function updateReplicaChoices(status) {
  const select = document.getElementById("log-replica");
  const chosen = select.value;
  const wanted = status.models.flatMap((model) =>
    model.replicas.map((replica) => ({
      value: `${model.name}\u0000${replica.id}`,
      label: `${model.name} · ${replica.id}`,
    })),
  );
  const current = [...select.options].slice(1).map((option) => option.value);
  if (current.join("\n") === wanted.map((item) => item.value).join("\n")) return;
  select.replaceChildren(
    element("option", { value: "" }, "choose a replica"),
    ...wanted.map((item) => element("option", { value: item.value }, item.label)),
  );
  if (wanted.some((item) => item.value === chosen)) select.value = chosen;
}

export async function refreshLogs() {
  const select = document.getElementById("log-replica");
  const output = document.getElementById("log-tail");
  const note = document.getElementById("logs-note");
  if (!select.value) return;
  const [model, replica] = select.value.split("\u0000");
  const query = new URLSearchParams({ model, replica, tail: String(TAIL) });
  try {
    const { lines } = await getJson(`/api/logs?${query}`);
    note.hidden = true;
    const text = lines.map((entry) => formatLine(entry.line)).join("\n");
    if (output.value !== text) {
      const atBottom = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
      output.value = text;
      if (atBottom) output.scrollTop = output.scrollHeight;
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      note.textContent = error.message;
      note.hidden = false;
      return;
    }
    throw error;
  }
}

export function setUpLogs() {
  document.getElementById("log-replica").addEventListener("change", () => {
    document.getElementById("log-tail").value = "";
    refreshLogs().catch(() => undefined);
  });
}
