// Which request content types each API route takes, and the one message for any other: the model
// server's parsers decide, and the gateway checks the same table so both answer a 415 alike.

const JSON_ONLY = ["application/json"] as const;
const SEED_FORMS = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"] as const;

/** The media types a route's body may have; undefined for routes without a body. */
export function acceptedMediaTypes(route: string): readonly string[] | undefined {
  if (route === "/generate") return SEED_FORMS;
  if (route === "/v1/completions" || route === "/v1/chat/completions") return JSON_ONLY;
  return undefined;
}

/** The media type of a Content-Type header ("application/json; charset=utf-8" → "application/json"). */
export function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

export function acceptsMediaType(route: string, contentType: string | undefined): boolean {
  const accepted = acceptedMediaTypes(route);
  return accepted === undefined || accepted.includes(mediaTypeOf(contentType));
}

export function unsupportedMediaTypeMessage(route: string, contentType: string | undefined): string {
  const accepted = acceptedMediaTypes(route) ?? JSON_ONLY;
  const sent = mediaTypeOf(contentType);
  const what =
    sent.length === 0 ? "a body without a Content-Type header" : `content type ${sent.slice(0, 100)}`;
  return `${what} is not accepted by POST ${route}; send ${accepted.join(", ")}`;
}
