// Progress on stderr for long CLI work (pull, convert, up, serve): a bar redrawn in place on a
// terminal, and on anything else a plain line when the step changes or every 10 %, so logs stay short.

export interface ProgressRenderer {
  /** `label` names the step (a file, a tensor); done/total in `unit`s. */
  update(label: string, done: number, total?: number): void;
  /** Ends the bar (a newline on a terminal); an optional closing line. */
  finish(message?: string): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream | { write(text: string): boolean; isTTY?: boolean; columns?: number };
  /** "bytes" formats as KiB/MiB/GiB; "count" as plain numbers. */
  unit?: "bytes" | "count";
  /** A prefix for every line ("convert", "pull hf://org/repo"). */
  title?: string;
}

export function formatProgressBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** "1:05" / "1:02:03"; "--:--" when unknown. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

/** Bytes per second over the last few seconds of (time, done) samples: a stall shows quickly. */
function rateTracker(): (done: number, now: number) => number | undefined {
  const samples: Array<{ at: number; done: number }> = [];
  return (done, now) => {
    const latest = samples[samples.length - 1];
    if (latest && done < latest.done) samples.length = 0;
    samples.push({ at: now, done });
    while (samples.length > 2 && (samples[0]?.at ?? now) < now - 5000) samples.shift();
    const first = samples[0];
    if (!first || now - first.at < 300) return undefined;
    return ((done - first.done) / (now - first.at)) * 1000;
  };
}

export function createProgress(options: ProgressOptions = {}): ProgressRenderer {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const format = (value: number): string =>
    options.unit === "count" ? String(value) : formatProgressBytes(value);
  const prefix = options.title ? `${options.title}: ` : "";
  let lastLabel: string | undefined;
  let lastTenth = -1;
  let lastDraw = 0;
  let drawn = false;
  const track = rateTracker();

  return {
    update(label, done, total) {
      const fraction = total && total > 0 ? Math.min(1, done / total) : undefined;
      // Bytes: the rate and, with a total, the time left (", 56.7 MiB/s, ETA 0:03").
      const bytesPerSecond = options.unit === "count" ? undefined : track(done, Date.now());
      const speed =
        bytesPerSecond === undefined || bytesPerSecond <= 0
          ? ""
          : `, ${formatProgressBytes(bytesPerSecond)}/s${total ? `, ETA ${formatEta((total - done) / bytesPerSecond)}` : ""}`;
      if (tty) {
        const now = Date.now();
        // Redraw at most ~20 times a second, but always at the end.
        if (now - lastDraw < 50 && fraction !== 1 && label === lastLabel) return;
        lastDraw = now;
        lastLabel = label;
        const width = 24;
        const amount = fraction === undefined ? format(done) : `${format(done)}/${format(total!)}`;
        const bar =
          fraction === undefined
            ? ""
            : `[${"#".repeat(Math.round(fraction * width)).padEnd(width, ".")}] ${(fraction * 100).toFixed(0).padStart(3)}% `;
        const columns = ("columns" in stream && stream.columns) || 100;
        const line = `${prefix}${bar}${amount}${speed} ${label}`.slice(0, Math.max(20, columns - 1));
        stream.write(`\r\x1b[2K${line}`);
        drawn = true;
        return;
      }
      const tenth = fraction === undefined ? -1 : Math.floor(fraction * 10);
      if (label === lastLabel && tenth === lastTenth) return;
      if (label !== lastLabel && tenth === lastTenth && fraction !== undefined && fraction < 1) {
        // A new step inside the same tenth: do not flood logs with one line per small step.
        lastLabel = label;
        return;
      }
      lastLabel = label;
      lastTenth = tenth;
      const amount =
        fraction === undefined ? format(done) : `${(fraction * 100).toFixed(0)}% of ${format(total!)}`;
      stream.write(`${prefix}${amount}${speed} ${label}\n`);
    },
    finish(message) {
      if (tty && drawn) stream.write("\n");
      drawn = false;
      if (message) stream.write(`${prefix}${message}\n`);
    },
  };
}
