// Failed requests in the benchmarks: each one recorded with its HTTP status, the error `code` and
// message (from an error body or an SSE error event), so a run that fails says why, and an
// overload (429/503 with Retry-After) is told apart from a lost request.

export interface FailedRequest {
  /** HTTP status; 200 when a stream began and then failed; 0 when no answer came (network). */
  status: number;
  /** The error's `code` (BERTH_OVERLOADED, ...), "stream_cut" or a network error code. */
  code: string;
  message: string;
  /** What kind of request it was (the workload's own label). */
  kind?: string;
}

export class RequestFailure extends Error {
  constructor(readonly failure: FailedRequest) {
    super(`${failure.status} ${failure.code}: ${failure.message}`);
    this.name = "RequestFailure";
  }
}

/** The failure of a non-2xx answer, read from its OpenAI-shaped error body when it has one. */
export function failureOfAnswer(status: number, bodyText: string): RequestFailure {
  try {
    const body = JSON.parse(bodyText) as { error?: { code?: unknown; message?: unknown } };
    if (body.error && typeof body.error.message === "string") {
      return new RequestFailure({
        status,
        code: typeof body.error.code === "string" ? body.error.code : "unknown",
        message: body.error.message,
      });
    }
  } catch {
    // Not JSON: keep the text.
  }
  return new RequestFailure({ status, code: "unknown", message: bodyText.slice(0, 300) });
}

/** Reads SSE `data:` lines: hands each JSON event on, fails on an error event or a stream without [DONE]. */
export class SseReader {
  private pending = "";
  private readonly decoder = new TextDecoder();
  done = false;

  constructor(private readonly onEvent: (event: Record<string, unknown>) => void = () => undefined) {}

  push(bytes: Uint8Array): void {
    this.pending += this.decoder.decode(bytes, { stream: true });
    let newline = this.pending.indexOf("\n");
    while (newline !== -1) {
      const line = this.pending.slice(0, newline).trim();
      this.pending = this.pending.slice(newline + 1);
      newline = this.pending.indexOf("\n");
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "[DONE]") {
        this.done = true;
        continue;
      }
      const event = JSON.parse(data) as Record<string, unknown> & {
        error?: { code?: unknown; message?: unknown };
      };
      if (event.error) {
        throw new RequestFailure({
          status: 200,
          code: typeof event.error.code === "string" ? event.error.code : "unknown",
          message: typeof event.error.message === "string" ? event.error.message : "error event",
        });
      }
      this.onEvent(event);
    }
  }

  end(): void {
    if (!this.done) {
      throw new RequestFailure({
        status: 200,
        code: "stream_cut",
        message: "the stream ended without [DONE]",
      });
    }
  }
}

/** Any error as a failed request (a network error has no status). */
export function asFailedRequest(error: unknown, kind?: string): FailedRequest {
  const failure: FailedRequest =
    error instanceof RequestFailure
      ? { ...error.failure }
      : {
          status: 0,
          code: String((error as { code?: unknown })?.code ?? "network"),
          message: error instanceof Error ? error.message : String(error),
        };
  return kind === undefined ? failure : { ...failure, kind };
}

/** Failures grouped by status, code and message, as Markdown table rows (with a count). */
export function failureRows(failures: readonly FailedRequest[], label: string): string[] {
  const groups = new Map<string, { failure: FailedRequest; count: number }>();
  for (const failure of failures) {
    const key = `${failure.status}\u0000${failure.code}\u0000${failure.message}`;
    const group = groups.get(key) ?? { failure, count: 0 };
    group.count += 1;
    groups.set(key, group);
  }
  return [...groups.values()].map(
    ({ failure, count }) =>
      `| ${label} | ${failure.status} | ${failure.code} | ${failure.message.replaceAll("|", "/").replaceAll("\n", " ")} | ${count} |`,
  );
}

export const FAILURE_TABLE_HEAD = [
  "| run | status | code | message | count |",
  "| --- | --- | --- | --- | --- |",
];
