// The live view `berth up` keeps at the top of a terminal: where to go (gateway, dashboard,
// Prometheus), each model's replicas ready/desired, in-flight requests and requests/s, and the last
// event. Log lines scroll below it (a terminal scroll region), so the view never scrolls away.
// renderView is pure; TerminalView owns the escape sequences and the refresh timer.

export interface ViewModel {
  name: string;
  ready: number;
  desired: number;
  inFlight: number;
  requestsPerSecond: number;
  unavailableReason?: string;
}

export interface ViewSnapshot {
  gatewayUrl: string;
  prometheusUrl?: string;
  models: ViewModel[];
  lastEvent?: { at: number; model: string; type: string; message: string };
  stopping?: boolean;
}

const MAX_MODEL_ROWS = 8;

/** The view's lines (no escape sequences), each cut to `width` columns. */
export function renderView(snapshot: ViewSnapshot, width: number): string[] {
  const lines: string[] = [];
  const where = [`gateway ${snapshot.gatewayUrl}`, `dashboard ${snapshot.gatewayUrl}/`];
  if (snapshot.prometheusUrl) where.push(`prometheus ${snapshot.prometheusUrl}`);
  lines.push(`berth up${snapshot.stopping ? " (stopping)" : ""}   ${where.join("   ")}`);
  const rows = [["MODEL", "READY/DESIRED", "IN-FLIGHT", "REQ/S", ""]];
  for (const model of snapshot.models.slice(0, MAX_MODEL_ROWS)) {
    const state =
      model.unavailableReason !== undefined
        ? `UNAVAILABLE: ${model.unavailableReason}`
        : model.desired > 0 && model.ready >= model.desired
          ? "ready"
          : model.desired === 0
            ? "scaled to zero (the first request starts a replica)"
            : "starting";
    rows.push([
      model.name,
      `${model.ready}/${model.desired}`,
      String(model.inFlight),
      model.requestsPerSecond.toFixed(1),
      state,
    ]);
  }
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  for (const row of rows)
    lines.push(
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join("  ")
        .trimEnd(),
    );
  if (snapshot.models.length > MAX_MODEL_ROWS)
    lines.push(`… and ${snapshot.models.length - MAX_MODEL_ROWS} more (berth status lists them all)`);
  const event = snapshot.lastEvent;
  lines.push(
    event
      ? `last event  ${clock(event.at)}  ${event.model}  ${event.type}: ${event.message}`
      : "last event  none yet",
  );
  lines.push("─".repeat(Math.max(10, Math.min(width, 100))));
  return lines.map((line) => (line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line));
}

function clock(at: number): string {
  const time = new Date(at);
  return [time.getHours(), time.getMinutes(), time.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
}

const ESC = "\x1b";

/**
 * Draws the view in the top rows of a TTY and confines everything else written to the stream to
 * the rows below (DECSTBM scroll region). Redraws every `refreshMs` and on demand.
 */
export class TerminalView {
  #height = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #onResize = (): void => this.#layout("resize");

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly snapshot: () => ViewSnapshot,
    private readonly refreshMs = 1000,
  ) {}

  start(): void {
    this.out.write(`${ESC}[2J${ESC}[H`);
    this.#layout("initial");
    this.out.on("resize", this.#onResize);
    this.#timer = setInterval(() => this.redraw(), this.refreshMs);
    this.#timer.unref();
  }

  redraw(): void {
    if (this.#stopped) return;
    this.#layout("redraw");
  }

  /** Leaves the last view on screen and gives the whole terminal back to scrolling output. */
  stop(): void {
    if (this.#stopped) return;
    this.redraw();
    this.#stopped = true;
    clearInterval(this.#timer);
    this.out.off("resize", this.#onResize);
    this.out.write(`${ESC}[r${ESC}[${this.out.rows || 24};1H\n`);
  }

  #layout(mode: "initial" | "resize" | "redraw"): void {
    const lines = renderView(this.snapshot(), this.out.columns || 80);
    const rows = this.out.rows || 24;
    const region = `${ESC}[${lines.length + 1};${rows}r`; // also moves the cursor home
    let text: string;
    if (mode === "initial") {
      // Log lines start right under the view and scroll inside the region once it is full.
      text = `${region}${ESC}[${lines.length + 1};1H${ESC}7`;
    } else if (mode === "resize" || lines.length !== this.#height) {
      text = `${ESC}7${region}`;
    } else {
      text = `${ESC}7`; // save the cursor (it sits in the log area)
    }
    this.#height = lines.length;
    lines.forEach((line, index) => {
      text += `${ESC}[${index + 1};1H${ESC}[2K${line}`;
    });
    text += `${ESC}8`;
    this.out.write(text);
  }
}
