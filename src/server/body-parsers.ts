// Strict request-body decoding: JSON, form-urlencoded and multipart fields must be valid UTF-8, and
// malformed input is refused with a catalogue code instead of being repaired with U+FFFD.

import type { FastifyRequest } from "fastify";
import { HttpError, toHttpError } from "./errors.js";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

export function decodeUtf8Strict(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new HttpError("BERTH_INVALID_UTF8", `${what} is not valid UTF-8`);
  }
}

/** application/json: UTF-8 checked before parsing, so bad bytes are not silently replaced. */
export function parseJsonBody(body: Buffer): unknown {
  const text = decodeUtf8Strict(body, "request body");
  if (text.trim().length === 0) throw new HttpError("BERTH_INVALID_JSON", "request body is empty");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError("BERTH_INVALID_JSON", `malformed JSON: ${(error as Error).message}`);
  }
}

export type FormFields = Record<string, string | string[]>;

function addField(fields: FormFields, name: string, value: string): void {
  const existing = fields[name];
  if (existing === undefined) fields[name] = value;
  else if (Array.isArray(existing)) existing.push(value);
  else fields[name] = [existing, value];
}

function decodeFormComponent(component: string): string {
  const spaced = component.replaceAll("+", " ");
  if (/%(?![0-9a-fA-F]{2})/.test(spaced)) {
    throw new HttpError("BERTH_INVALID_REQUEST", "form body: malformed percent-encoding");
  }
  try {
    return decodeURIComponent(spaced);
  } catch {
    throw new HttpError("BERTH_INVALID_UTF8", "form body: percent-encoded bytes are not valid UTF-8");
  }
}

/**
 * application/x-www-form-urlencoded, given the body as @fastify/formbody decodes it (UTF-8 with
 * replacement). Non-ASCII must be percent-encoded in this format, so a U+FFFD here came from bytes
 * that were not UTF-8 (curl -d sends raw UTF-8 text, which decodes cleanly).
 */
export function parseFormBody(text: string): FormFields {
  if (text.includes("\uFFFD")) throw new HttpError("BERTH_INVALID_UTF8", "form body is not valid UTF-8");
  const fields: FormFields = Object.create(null);
  for (const pair of text.split("&")) {
    if (pair.length === 0) continue;
    const equals = pair.indexOf("=");
    const name = decodeFormComponent(equals === -1 ? pair : pair.slice(0, equals));
    const value = equals === -1 ? "" : decodeFormComponent(pair.slice(equals + 1));
    addField(fields, name, value);
  }
  return fields;
}

export interface MultipartLimits {
  /** Largest field or file, bytes. */
  maxPartBytes: number;
  maxParts: number;
}

/**
 * Reads a multipart/form-data body into its text fields. Fields are read as latin1 (one char per
 * byte) and then decoded as strict UTF-8, so invalid bytes are refused. File parts are read within
 * the limit and ignored, as Flask's request.form ignores them.
 */
export async function readMultipartFields(
  request: FastifyRequest,
  limits: MultipartLimits,
): Promise<FormFields> {
  const fields: FormFields = Object.create(null);
  try {
    const parts = request.parts({
      defCharset: "latin1",
      limits: {
        fieldSize: limits.maxPartBytes,
        fileSize: limits.maxPartBytes,
        parts: limits.maxParts,
        fields: limits.maxParts,
        files: limits.maxParts,
      },
    });
    for await (const part of parts) {
      if (part.type === "file") {
        await part.toBuffer();
        continue;
      }
      if (part.valueTruncated) {
        throw new HttpError(
          "BERTH_BODY_TOO_LARGE",
          `multipart field ${part.fieldname} is larger than ${limits.maxPartBytes} bytes`,
        );
      }
      const raw = typeof part.value === "string" ? part.value : String(part.value);
      addField(
        fields,
        part.fieldname,
        decodeUtf8Strict(Buffer.from(raw, "latin1"), `field ${part.fieldname}`),
      );
    }
  } catch (error) {
    const httpError = toHttpError(error);
    if (httpError.code !== "BERTH_INTERNAL") throw httpError;
    // busboy reports a broken body ("Unexpected end of multipart data") as a plain Error.
    throw new HttpError("BERTH_INVALID_REQUEST", `malformed multipart body: ${(error as Error).message}`);
  }
  return fields;
}
