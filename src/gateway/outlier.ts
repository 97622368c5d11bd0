// Outlier ejection: an upstream that refused a connection, hung or answered 503 is skipped for a
// while, longer each time in a row (as Envoy's base_ejection_time × ejections). Pure: time comes in.

export type EjectionReason = "refused" | "hung" | "draining";

export interface OutlierOptions {
  /** First ejection lasts this long; each consecutive one doubles it. */
  baseEjectionMs: number;
  maxEjectionMs: number;
}

interface EjectionState {
  until: number;
  consecutive: number;
  reason: EjectionReason;
}

export class OutlierDetector {
  private readonly ejections = new Map<string, EjectionState>();

  constructor(private readonly options: OutlierOptions) {}

  /** Ejects `id` from `now`; returns when the ejection ends. `durationMs` overrides the backoff. */
  eject(id: string, now: number, reason: EjectionReason, durationMs?: number): number {
    const previous = this.ejections.get(id);
    const consecutive = (previous?.consecutive ?? 0) + 1;
    const backoff = Math.min(
      this.options.maxEjectionMs,
      this.options.baseEjectionMs * 2 ** Math.min(30, consecutive - 1),
    );
    const until = Math.max(previous?.until ?? 0, now + (durationMs ?? backoff));
    this.ejections.set(id, { until, consecutive, reason });
    return until;
  }

  isEjected(id: string, now: number): boolean {
    const state = this.ejections.get(id);
    return state !== undefined && state.until > now;
  }

  ejection(id: string): { until: number; consecutive: number; reason: EjectionReason } | undefined {
    const state = this.ejections.get(id);
    return state ? { ...state } : undefined;
  }

  /**
   * A response came back: the streak ends, and an ejection in progress too (a hang or refusal was a
   * false alarm) — except a draining one, which the replica itself declared.
   */
  recordSuccess(id: string, now: number): void {
    const state = this.ejections.get(id);
    if (state && state.reason === "draining" && state.until > now) return;
    this.ejections.delete(id);
  }

  /** Drops state of upstreams that no longer exist. */
  retainOnly(ids: ReadonlySet<string>): void {
    for (const id of this.ejections.keys()) if (!ids.has(id)) this.ejections.delete(id);
  }
}
