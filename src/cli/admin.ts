// What the day-two commands share: the admin socket of this BERTH_HOME's `berth up`, and the
// translation of admin-API failures into one-line CLI errors.
import { AdminResponseError, AdminUnavailableError } from "../control/admin-client.js";
import { adminSocketPath } from "../control/admin-protocol.js";
import { berthHome, stateDir } from "../util/home.js";
import { CliError, EXIT_FAILURE, EXIT_USAGE } from "./errors.js";

export function localSocketPath(): string {
  return adminSocketPath(stateDir());
}

/** Runs an admin call; a missing `berth up` or a refused request becomes a CliError. */
export async function withAdmin<T>(call: (socketPath: string) => Promise<T>): Promise<T> {
  try {
    return await call(localSocketPath());
  } catch (error) {
    if (error instanceof AdminUnavailableError) {
      throw new CliError(
        `no berth up is running for BERTH_HOME=${berthHome()} (start one with: berth up -f berth.yaml)`,
        EXIT_FAILURE,
      );
    }
    if (error instanceof AdminResponseError) {
      throw new CliError(
        `${error.message} (${error.code})`,
        error.statusCode < 500 ? EXIT_USAGE : EXIT_FAILURE,
      );
    }
    throw error;
  }
}

/** "1h02m", "3m05s", "12s". */
export function formatUptime(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/** Left-aligned columns separated by two spaces. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, index) => {
      widths[index] = Math.max(widths[index] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, index) => (index === row.length - 1 ? cell : cell.padEnd(widths[index] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
