// Errors of the gateway boundary: one catalogue of stable codes with their HTTP status and OpenAI
// error type, and the one function that turns them into OpenAI-shaped bodies.

export type GatewayErrorCode =
  | "BERTH_INVALID_REQUEST"
  | "BERTH_INVALID_JSON"
  | "BERTH_INVALID_UTF8"
  | "BERTH_UNSUPPORTED_MEDIA_TYPE"
  | "BERTH_BODY_TOO_LARGE"
  | "BERTH_NOT_FOUND"
  | "BERTH_METHOD_NOT_ALLOWED"
  | "BERTH_MODEL_NOT_FOUND"
  | "BERTH_UNAUTHORIZED"
  | "BERTH_RATE_LIMITED"
  | "BERTH_NO_REPLICA"
  | "BERTH_MODEL_UNAVAILABLE"
  | "BERTH_HOLD_FULL"
  | "BERTH_UPSTREAM_UNAVAILABLE"
  | "BERTH_UPSTREAM_TIMEOUT"
  | "BERTH_DEADLINE_EXCEEDED"
  | "BERTH_GATEWAY_DRAINING"
  | "BERTH_INTERNAL";

interface CodeInfo {
  status: number;
  /** OpenAI's `error.type`: clients (openai-node) map status to classes, some also read the type. */
  type: string;
}

export const GATEWAY_ERRORS: Record<GatewayErrorCode, CodeInfo> = {
  BERTH_INVALID_REQUEST: { status: 400, type: "invalid_request_error" },
  BERTH_INVALID_JSON: { status: 400, type: "invalid_request_error" },
  BERTH_INVALID_UTF8: { status: 400, type: "invalid_request_error" },
  BERTH_UNSUPPORTED_MEDIA_TYPE: { status: 415, type: "invalid_request_error" },
  BERTH_BODY_TOO_LARGE: { status: 413, type: "invalid_request_error" },
  BERTH_NOT_FOUND: { status: 404, type: "invalid_request_error" },
  BERTH_METHOD_NOT_ALLOWED: { status: 405, type: "invalid_request_error" },
  BERTH_MODEL_NOT_FOUND: { status: 404, type: "invalid_request_error" },
  BERTH_UNAUTHORIZED: { status: 401, type: "authentication_error" },
  BERTH_RATE_LIMITED: { status: 429, type: "rate_limit_error" },
  BERTH_NO_REPLICA: { status: 503, type: "server_error" },
  BERTH_MODEL_UNAVAILABLE: { status: 503, type: "server_error" },
  BERTH_HOLD_FULL: { status: 503, type: "server_error" },
  BERTH_UPSTREAM_UNAVAILABLE: { status: 502, type: "server_error" },
  BERTH_UPSTREAM_TIMEOUT: { status: 504, type: "server_error" },
  BERTH_DEADLINE_EXCEEDED: { status: 504, type: "server_error" },
  BERTH_GATEWAY_DRAINING: { status: 503, type: "server_error" },
  BERTH_INTERNAL: { status: 500, type: "server_error" },
};

export class GatewayError extends Error {
  readonly status: number;
  readonly type: string;

  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    readonly options: { param?: string; retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.name = "GatewayError";
    this.status = GATEWAY_ERRORS[code].status;
    this.type = GATEWAY_ERRORS[code].type;
  }
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export function errorBody(error: GatewayError): OpenAIErrorBody {
  return {
    error: { message: error.message, type: error.type, param: error.options.param ?? null, code: error.code },
  };
}

/** Headers a gateway error adds to its response (Retry-After for 429 and 503). */
export function errorHeaders(error: GatewayError): Record<string, string> {
  const retryAfter = error.options.retryAfterSeconds;
  return retryAfter === undefined ? {} : { "retry-after": String(Math.max(1, Math.ceil(retryAfter))) };
}

/** A configuration the gateway refuses to start with (auth on without keys, unreadable key file). */
export type GatewayConfigErrorCode = "BERTH_AUTH_NO_KEYS" | "BERTH_AUTH_KEYS_UNREADABLE";

export class GatewayConfigError extends Error {
  constructor(
    readonly code: GatewayConfigErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "GatewayConfigError";
  }
}
