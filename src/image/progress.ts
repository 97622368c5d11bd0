// Progress lines for large layers and uploads on stderr: one line per 10% step of anything over a few
// MB, so CI logs stay short and a terminal still shows that a 4 GB model layer is moving. No timers.
import type { ProgressReporter } from "./layer.js";

export const PROGRESS_MIN_BYTES = 16 * 1024 * 1024;

function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/** Which 10% step `done` of `total` is in (0..10). Pure. */
export function progressStep(done: number, total: number): number {
  if (total <= 0) return 10;
  return Math.min(10, Math.floor((done / total) * 10));
}

export function createProgressPrinter(
  write: (line: string) => void,
  minBytes = PROGRESS_MIN_BYTES,
): ProgressReporter {
  const lastStep = new Map<string, number>();
  return (name, done, total) => {
    if (total < minBytes) return;
    const step = progressStep(done, total);
    if ((lastStep.get(name) ?? -1) >= step) return;
    lastStep.set(name, step);
    write(
      `berth build: ${name} ${step * 10}% (${megabytes(Math.min(done, total))}/${megabytes(total)} MB)\n`,
    );
  };
}
