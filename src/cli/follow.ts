// The follow loop `berth status --watch` and `berth events -f` share: call, print, wait, again,
// until Ctrl-C (exit 0) or until the running berth up goes away (its error, exit 1).

/** Runs `step` every `intervalMs` until SIGINT/SIGTERM; the first error ends the loop and is thrown. */
export async function followUntilStopped(step: () => Promise<void>, intervalMs: number): Promise<void> {
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    while (!abort.signal.aborted) {
      await step();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        abort.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

/** `--interval` as milliseconds (0.2 s to 1 h); undefined when it is not such a number of seconds. */
export function parseIntervalSeconds(value: string): number | undefined {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0.2 || seconds > 3600) return undefined;
  return Math.round(seconds * 1000);
}
