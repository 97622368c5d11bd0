// HTTP(S) for the model store, on undici: redirects followed by hand (loops and chains refused,
// credentials dropped across origins), 429/503 turned into TransientErrors with Retry-After,
// range fetches for downloadFile, and a fetch() for the @huggingface/hub client with the same rules.
import type { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { Agent, type Dispatcher, request } from "undici";
import { type RangeFetch, type RangeResponse, TransientError } from "./download.js";
import { ModelSourceError } from "./errors.js";

export const MAX_REDIRECTS = 10;

// One keep-alive pool for the process; big bodies stream with large socket reads.
const agent = new Agent({ connections: 16, bodyTimeout: 120_000, headersTimeout: 60_000 });

export interface HttpRequest {
  /** The source URI, for messages. */
  source: string;
  url: string;
  method?: "GET" | "HEAD";
  headers?: Record<string, string>;
  signal?: AbortSignal;
  dispatcher?: Dispatcher;
}

export interface HttpAnswer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & Dispatcher.BodyMixin;
  /** The URL that answered, after redirects. */
  url: string;
  /** Headers of the first answer (the hub puts X-Repo-Commit / X-Linked-* on the redirect). */
  firstHeaders: Record<string, string | string[] | undefined>;
}

export function header(
  headers: Record<string, string | string[] | undefined>,
  name: string,
): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Retry-After in ms: seconds or an HTTP date. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** Network errors as one line naming the host. */
export function unreachable(source: string, url: string, error: unknown): ModelSourceError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = (error as { code?: string }).code ?? cause?.code;
  const what = code ?? (error as Error).message ?? String(error);
  return new ModelSourceError(
    "BERTH_MODEL_SOURCE_UNREACHABLE",
    `${source}: cannot reach ${hostOf(url)} (${what})`,
  );
}

/** One request, redirects followed by hand. 3xx chains past MAX_REDIRECTS and loops are refused. */
export async function httpRequest(input: HttpRequest): Promise<HttpAnswer> {
  const seen = new Set<string>();
  let url = input.url;
  let headers = { ...input.headers };
  let firstHeaders: HttpAnswer["firstHeaders"] | undefined;
  for (let hop = 0; ; hop++) {
    seen.add(url);
    let answer: Dispatcher.ResponseData;
    try {
      answer = await request(url, {
        method: input.method ?? "GET",
        headers,
        dispatcher: input.dispatcher ?? agent,
        ...(input.signal ? { signal: input.signal } : {}),
      });
    } catch (error) {
      if (input.signal?.aborted) throw error;
      const code = (error as { code?: string }).code;
      if (code === "ECONNRESET" || code === "UND_ERR_SOCKET") {
        throw new TransientError(`${hostOf(url)}: ${code}`);
      }
      throw unreachable(input.source, url, error);
    }
    firstHeaders ??= answer.headers;
    const location = header(answer.headers, "location");
    if (answer.statusCode >= 300 && answer.statusCode < 400 && location !== undefined) {
      answer.body.resume();
      const next = new URL(location, url).href;
      if (seen.has(next)) {
        throw new ModelSourceError(
          "BERTH_MODEL_DOWNLOAD_FAILED",
          `${input.source}: redirect loop (${url} -> ${next}, seen before after ${hop + 1} redirects)`,
        );
      }
      if (hop + 1 > MAX_REDIRECTS) {
        throw new ModelSourceError(
          "BERTH_MODEL_DOWNLOAD_FAILED",
          `${input.source}: more than ${MAX_REDIRECTS} redirects (last to ${next})`,
        );
      }
      // Credentials go to the origin they were meant for, never to a storage host it redirects to.
      if (new URL(next).origin !== new URL(url).origin) {
        const { authorization: _a, Authorization: _b, ...rest } = headers;
        headers = rest;
      }
      url = next;
      continue;
    }
    return { statusCode: answer.statusCode, headers: answer.headers, body: answer.body, url, firstHeaders };
  }
}

/** Reads a little of an error body, to say what arrived. */
async function bodySnippet(body: Dispatcher.BodyMixin & Readable): Promise<string> {
  try {
    const text = (await body.text()).slice(0, 2000);
    const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
    const line = (title ?? text).replace(/\s+/g, " ").trim().slice(0, 160);
    return line === "" ? "" : `: ${line}`;
  } catch {
    return "";
  }
}

/** Turns a non-2xx answer into the store's error (404, 401/403) or a TransientError (429, 5xx). */
export async function statusError(source: string, answer: HttpAnswer): Promise<Error> {
  const status = answer.statusCode;
  const host = hostOf(answer.url);
  const snippet = await bodySnippet(answer.body);
  if (status === 429 || status === 503 || status === 502 || status === 504) {
    return new TransientError(
      `${host} answered ${status}${snippet}`,
      retryAfterMs(header(answer.headers, "retry-after")),
    );
  }
  if (status === 401 || status === 403) {
    return new ModelSourceError(
      "BERTH_MODEL_SOURCE_UNAUTHORIZED",
      `${source}: ${host} answered ${status} (${status === 401 ? "a token is needed" : "the token may not read it"})${snippet}`,
    );
  }
  if (status === 404 || status === 410) {
    return new ModelSourceError(
      "BERTH_MODEL_SOURCE_NOT_FOUND",
      `${source}: ${host} answered ${status}${snippet}`,
    );
  }
  return new ModelSourceError(
    "BERTH_MODEL_DOWNLOAD_FAILED",
    `${source}: ${host} answered ${status}${snippet}`,
  );
}

/** Retries a request that failed transiently (429/503 with Retry-After, resets), bounded. */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  options: { source: string; retries?: number; maxWaitMs?: number; signal?: AbortSignal },
): Promise<T> {
  const retries = options.retries ?? 5;
  const maxWait = options.maxWaitMs ?? 30_000;
  for (let failures = 0; ; failures++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      if (failures >= retries) {
        throw new ModelSourceError(
          "BERTH_MODEL_SOURCE_UNREACHABLE",
          `${options.source}: gave up after ${retries + 1} tries: ${error.message}`,
        );
      }
      const wait = error.retryAfterMs ?? Math.min(250 * 2 ** failures, maxWait);
      if (wait > maxWait) {
        throw new ModelSourceError(
          "BERTH_MODEL_SOURCE_UNREACHABLE",
          `${options.source}: the server asks to retry after ${Math.round(wait / 1000)} s: ${error.message}`,
        );
      }
      await delay(wait, undefined, options.signal ? { signal: options.signal } : undefined);
    }
  }
}

export interface RemoteObject {
  /** Strong ETag, when the server sent one (used as If-Range on resume). */
  etag?: string;
  totalBytes?: number;
}

/**
 * A RangeFetch over HTTP: `Range: bytes=OFFSET-` (with If-Range when the ETag is known, so a
 * changed object restarts from 0 instead of splicing two versions), 206/200/416 understood.
 */
export function httpRangeFetch(
  source: string,
  url: string,
  options: { headers?: Record<string, string>; seen?: RemoteObject } = {},
): RangeFetch {
  const seen = options.seen ?? {};
  return async (offset, signal): Promise<RangeResponse> => {
    const headers: Record<string, string> = { ...options.headers, "accept-encoding": "identity" };
    if (offset > 0) {
      headers.range = `bytes=${offset}-`;
      if (seen.etag && !seen.etag.startsWith("W/")) headers["if-range"] = seen.etag;
    }
    const answer = await httpRequest({ source, url, headers, signal });
    const contentType = header(answer.headers, "content-type");
    if (answer.statusCode === 416 && offset > 0) {
      const total = Number(/\/(\d+)$/.exec(header(answer.headers, "content-range") ?? "")?.[1]);
      answer.body.resume();
      if (total === offset) return { body: emptyBody(), start: offset, totalBytes: total };
      // The object shrank or changed: start over.
      return { ...(await httpRangeFetch(source, url, { ...options, seen: {} })(0, signal)) };
    }
    if (answer.statusCode !== 200 && answer.statusCode !== 206) throw await statusError(source, answer);
    const etag = header(answer.headers, "etag");
    if (etag) seen.etag = etag;
    const response: RangeResponse = { body: answer.body, start: 0 };
    if (contentType) response.contentType = contentType;
    if (answer.statusCode === 206) {
      const range = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(header(answer.headers, "content-range") ?? "");
      response.start = Number(range?.[1] ?? 0);
      if (range?.[3] && range[3] !== "*") response.totalBytes = Number(range[3]);
    } else {
      const length = header(answer.headers, "content-length");
      if (length !== undefined) response.totalBytes = Number(length);
    }
    if (response.totalBytes !== undefined) seen.totalBytes = response.totalBytes;
    return response;
  };
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}

/**
 * A fetch() for the @huggingface/hub client with this module's rules: redirects by hand (loops
 * refused, Authorization dropped across origins), 429/503 retried with bounded backoff, network
 * failures as one line naming the host.
 */
export function storeFetch(source: string, signal?: AbortSignal): typeof fetch {
  return async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((value, key) => {
      headers[key] = value;
    });
    const method = (init?.method ?? "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD") {
      throw new ModelSourceError("BERTH_MODEL_DOWNLOAD_FAILED", `${source}: unexpected ${method} ${url}`);
    }
    const answer = await withRetries(
      async () => {
        const reply = await httpRequest({
          source,
          url,
          method: method as "GET" | "HEAD",
          headers,
          ...(signal ? { signal } : {}),
        });
        const status = reply.statusCode;
        if (status === 429 || status === 503) throw await statusError(source, reply);
        return reply;
      },
      { source, ...(signal ? { signal } : {}) },
    );
    const responseHeaders = new Headers();
    for (const [key, value] of Object.entries(answer.headers)) {
      if (value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) responseHeaders.append(key, item);
    }
    // The hub sends commit and LFS headers on the resolve answer that redirects; keep them.
    for (const name of ["x-repo-commit", "x-linked-etag", "x-linked-size", "x-error-code"]) {
      const first = header(answer.firstHeaders, name);
      if (first !== undefined && !responseHeaders.has(name)) responseHeaders.set(name, first);
    }
    const nullBody = method === "HEAD" || answer.statusCode === 204 || answer.statusCode === 304;
    if (nullBody) answer.body.resume();
    const response = new Response(nullBody ? null : (answer.body as unknown as ReadableStream), {
      status: answer.statusCode,
      headers: responseHeaders,
    });
    Object.defineProperty(response, "url", { value: answer.url });
    return response;
  };
}
