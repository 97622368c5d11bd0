// Durations ("500ms", "30s", "10m", "1h") and Kubernetes quantities as they appear in specs.
// Pure functions; undefined means "not valid" so the schema can name the field.

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "1h30m", "30s", "250ms" or a bare number of seconds into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join("") !== trimmed) return undefined;
  return parts.reduce((total, part) => total + Number(part[1]) * (DURATION_UNITS_MS[part[2]!] ?? 0), 0);
}

/** Formats milliseconds the way a person would write them in a spec. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const MEMORY_FACTORS: Record<string, number> = {
  "": 1,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** "4Gi" → bytes. */
export function parseMemory(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (MEMORY_FACTORS[match[2] ?? ""] ?? 1));
}

/** "500m" → 0.5, "2" → 2. */
export function parseCpu(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+m$/.test(trimmed)) return Number(trimmed.slice(0, -1)) / 1000;
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  return undefined;
}
