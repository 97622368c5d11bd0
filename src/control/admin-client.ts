// The day-two commands' side of the admin API: requests over the Unix socket of a running
// `berth up`, answers parsed with zod. A missing or dead socket is AdminUnavailableError.
import { request } from "node:http";
import type { z } from "zod";
import { adminErrorSchema, logLineSchema } from "./admin-protocol.js";

export class AdminUnavailableError extends Error {
  readonly code = "BERTH_UP_NOT_RUNNING";
  constructor(readonly socketPath: string) {
    super(`no berth up is running (nothing answers on ${socketPath})`);
    this.name = "AdminUnavailableError";
  }
}

/** An answer of the admin API with an error body (unknown model, invalid spec). */
export class AdminResponseError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
    this.name = "AdminResponseError";
  }
}

interface RawResponse {
  statusCode: number;
  body: string;
}

function send(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: payload === undefined ? {} : { "content-type": "application/json" },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () =>
      req.destroy(new Error(`berth up did not answer ${method} ${path} in ${timeoutMs} ms`)),
    );
    req.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT" || error.code === "ECONNREFUSED")
        reject(new AdminUnavailableError(socketPath));
      else reject(error);
    });
    req.end(payload);
  });
}

function errorOf(response: RawResponse): AdminResponseError {
  try {
    const parsed = adminErrorSchema.parse(JSON.parse(response.body));
    return new AdminResponseError(parsed.error.code, parsed.error.message, response.statusCode);
  } catch {
    return new AdminResponseError(
      "BERTH_ADMIN_PROTOCOL",
      `unexpected answer ${response.statusCode}`,
      response.statusCode,
    );
  }
}

/** One JSON request; the answer must match `schema`. */
export async function adminCall<Schema extends z.ZodType>(
  socketPath: string,
  schema: Schema,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
): Promise<z.infer<Schema>> {
  const response = await send(socketPath, method, path, body);
  if (response.statusCode >= 400) throw errorOf(response);
  return schema.parse(JSON.parse(response.body));
}

/** Streams NDJSON log lines until the server ends the stream or the signal aborts. */
export function adminLogs(
  socketPath: string,
  path: string,
  onLine: (line: z.infer<typeof logLineSchema>) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: "GET", path, signal }, (res) => {
      if ((res.statusCode ?? 0) >= 400) {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          reject(errorOf({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") })),
        );
        return;
      }
      let partial = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) if (line.length > 0) onLine(logLineSchema.parse(JSON.parse(line)));
      });
      res.on("end", () => resolve());
      res.on("error", (error) => (signal?.aborted ? resolve() : reject(error)));
    });
    req.on("error", (error: NodeJS.ErrnoException) => {
      if (signal?.aborted) resolve();
      else if (error.code === "ENOENT" || error.code === "ECONNREFUSED")
        reject(new AdminUnavailableError(socketPath));
      else reject(error);
    });
    req.end();
  });
}
