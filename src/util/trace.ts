// W3C Trace Context (traceparent) for the gateway and the replicas: the gateway continues a
// caller's trace (or starts one) with a span of its own and forwards it; the replica logs the same
// trace id with its own span, so one search for a trace id (or the x-request-id) finds every log line.
import { randomBytes } from "node:crypto";

export interface TraceContext {
  traceId: string;
  /** This hop's span id. */
  spanId: string;
  /** The caller's span id, when the request came with a traceparent. */
  parentSpanId?: string;
  flags: string;
}

// version 00: 2 hex version, 32 hex trace id, 16 hex parent id, 2 hex flags; all-zero ids are invalid.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

export function parseTraceparent(
  header: string | string[] | undefined,
): { traceId: string; parentSpanId: string; flags: string } | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const match = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!match) return undefined;
  const [, version, traceId, parentSpanId, flags, rest] = match;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId ?? "") || /^0+$/.test(parentSpanId ?? "")) return undefined;
  return { traceId: traceId ?? "", parentSpanId: parentSpanId ?? "", flags: flags ?? "00" };
}

/** This hop's context: the caller's trace continued with a new span, or a new sampled trace. */
export function traceContextFor(
  header: string | string[] | undefined,
  random: (bytes: number) => string = (bytes) => randomBytes(bytes).toString("hex"),
): TraceContext {
  const incoming = parseTraceparent(header);
  if (incoming)
    return {
      traceId: incoming.traceId,
      spanId: random(8),
      parentSpanId: incoming.parentSpanId,
      flags: incoming.flags,
    };
  return { traceId: random(16), spanId: random(8), flags: "01" };
}

export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.flags}`;
}

/** Log fields in Elastic Common Schema's names (trace.id, span.id), which JSON and ECS output share. */
export function traceLogFields(context: TraceContext): { trace: { id: string }; span: { id: string } } {
  return { trace: { id: context.traceId }, span: { id: context.spanId } };
}
