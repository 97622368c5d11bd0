// The HTTP API's error catalogue: every failure a client can see, with a stable code, a status
// and an OpenAI error type, turned into `{"error":{message,type,param,code}}` by toHttpError/errorBody.

import { ZodError } from "zod";

export type OpenAiErrorType = "invalid_request_error" | "rate_limit_error" | "server_error";

interface CatalogueEntry {
  status: number;
  type: OpenAiErrorType;
}

/** Every code the model server answers with. Clients and tests match on the code, never on the message. */
export const HTTP_ERRORS = {
  BERTH_INVALID_JSON: { status: 400, type: "invalid_request_error" },
  BERTH_INVALID_UTF8: { status: 400, type: "invalid_request_error" },
  BERTH_INVALID_REQUEST: { status: 400, type: "invalid_request_error" },
  BERTH_CONTEXT_OVERFLOW: { status: 400, type: "invalid_request_error" },
  BERTH_MODEL_NOT_FOUND: { status: 404, type: "invalid_request_error" },
  BERTH_ROUTE_NOT_FOUND: { status: 404, type: "invalid_request_error" },
  BERTH_METHOD_NOT_ALLOWED: { status: 405, type: "invalid_request_error" },
  BERTH_BODY_TOO_LARGE: { status: 413, type: "invalid_request_error" },
  BERTH_UNSUPPORTED_MEDIA_TYPE: { status: 415, type: "invalid_request_error" },
  BERTH_OVERLOADED: { status: 429, type: "rate_limit_error" },
  // nginx's convention for "the client went away": never seen by that client, but counted in metrics.
  BERTH_CLIENT_CLOSED_REQUEST: { status: 499, type: "invalid_request_error" },
  BERTH_INTERNAL: { status: 500, type: "server_error" },
  BERTH_ENGINE_FAILED: { status: 500, type: "server_error" },
  BERTH_NOT_READY: { status: 503, type: "server_error" },
  BERTH_DRAINING: { status: 503, type: "server_error" },
  BERTH_ENGINE_CLOSED: { status: 503, type: "server_error" },
  BERTH_DEADLINE_EXCEEDED: { status: 504, type: "server_error" },
} as const satisfies Record<string, CatalogueEntry>;

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

export function isHttpErrorCode(code: unknown): code is HttpErrorCode {
  return typeof code === "string" && Object.hasOwn(HTTP_ERRORS, code);
}

export interface HttpErrorOptions {
  /** The request field at fault, e.g. "messages[1].role". */
  param?: string | null;
  /** Seconds, sent as Retry-After (429, 503). */
  retryAfterSeconds?: number;
  cause?: unknown;
}

/** The one throwable of the HTTP layer; the app's error handler turns it into a response. */
export class HttpError extends Error {
  readonly status: number;
  readonly type: OpenAiErrorType;
  readonly param: string | null;
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: HttpErrorCode,
    message: string,
    options: HttpErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HttpError";
    this.status = HTTP_ERRORS[code].status;
    this.type = HTTP_ERRORS[code].type;
    this.param = options.param ?? null;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export interface OpenAiErrorBody {
  error: { message: string; type: OpenAiErrorType; param: string | null; code: HttpErrorCode };
}

export function errorBody(error: HttpError): OpenAiErrorBody {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
}

// Messages the gateway writes too, so a client gets the same words from either (src/gateway/app.ts).

export function bodyTooLargeMessage(declaredBytes: number, limitBytes: number): string {
  return `the request body (${declaredBytes} bytes) is larger than the limit of ${limitBytes} bytes`;
}

export function deadlineMessage(deadlineMs: number): string {
  return `the request ran past its deadline of ${deadlineMs} ms`;
}

export function methodNotAllowedMessage(method: string, path: string, allowed: readonly string[]): string {
  return `method ${method} is not allowed on ${path}; use ${allowed.join(" or ")}`;
}

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"] as const;

/**
 * The methods a path has routes for, when the request's method is not one of them (405, as the
 * seed's Flask app answered `GET /generate`); empty when the path has no route at all (404).
 */
export function allowedMethods(
  app: { hasRoute(options: { method: string; url: string }): boolean },
  path: string,
): string[] {
  // hasRoute reads its url as a route pattern: a request path with pattern syntax (":", "*",
  // parentheses) would be misread or make the router throw (a 500 found by the HTTP fuzz test).
  if (/[:*()]/.test(path)) return [];
  return METHODS.filter((method) => {
    try {
      return app.hasRoute({ method, url: path });
    } catch {
      return false;
    }
  });
}

/** "messages", 0, "role" → "messages[0].role" (the way OpenAI names params). */
export function formatParamPath(path: ReadonlyArray<PropertyKey>): string | null {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else text += text.length === 0 ? String(key) : `.${String(key)}`;
  }
  return text.length > 0 ? text : null;
}

// Fastify's and @fastify/multipart's own error codes, mapped onto ours.
const FRAMEWORK_CODES: Record<string, HttpErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "BERTH_BODY_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "BERTH_UNSUPPORTED_MEDIA_TYPE",
  FST_INVALID_MULTIPART_CONTENT_TYPE: "BERTH_UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_EMPTY_JSON_BODY: "BERTH_INVALID_JSON",
  FST_ERR_CTP_INVALID_JSON_BODY: "BERTH_INVALID_JSON",
  FST_INVALID_JSON_FIELD_ERROR: "BERTH_INVALID_JSON",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "BERTH_INVALID_REQUEST",
  FST_PROTO_VIOLATION: "BERTH_INVALID_REQUEST",
  FST_PARTS_LIMIT: "BERTH_BODY_TOO_LARGE",
  FST_FILES_LIMIT: "BERTH_BODY_TOO_LARGE",
  FST_FIELDS_LIMIT: "BERTH_BODY_TOO_LARGE",
  FST_REQ_FILE_TOO_LARGE: "BERTH_BODY_TOO_LARGE",
};

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Any thrown value → an HttpError. Engine errors (EngineError) carry catalogue codes and keep them;
 * unknown failures become BERTH_INTERNAL with a generic message (the real one goes to the log only).
 */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof ZodError) {
    const issue = error.issues[0];
    const param = issue ? formatParamPath(issue.path) : null;
    const message = issue ? `${param ?? "body"}: ${issue.message}` : "invalid request";
    return new HttpError("BERTH_INVALID_REQUEST", message, { param, cause: error });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (isHttpErrorCode(code)) {
    const param = (error as { param?: unknown }).param;
    return new HttpError(code, messageOf(error), {
      param: typeof param === "string" ? param : null,
      cause: error,
    });
  }
  if (typeof code === "string") {
    const mapped = FRAMEWORK_CODES[code];
    if (mapped) return new HttpError(mapped, messageOf(error), { cause: error });
  }
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) {
    // A client error from a parser (e.g. busboy's "Unexpected end of multipart data").
    return new HttpError("BERTH_INVALID_REQUEST", messageOf(error), { cause: error });
  }
  return new HttpError("BERTH_INTERNAL", "internal server error", { cause: error });
}
