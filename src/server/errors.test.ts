// The error catalogue: every way an error can arrive (ours, the engine's, zod's, fastify's, unknown)
// becomes one HttpError with a catalogue code, and leaves in OpenAI's shape.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { errorBody, HttpError, toHttpError } from "./errors.js";

describe("toHttpError", () => {
  it("keeps engine codes and their param", () => {
    const engineError = Object.assign(
      new Error("prompt (900 tokens) + max_tokens (200) exceeds the context"),
      {
        code: "BERTH_CONTEXT_OVERFLOW",
        param: "max_tokens",
      },
    );
    const mapped = toHttpError(engineError);
    expect(mapped).toMatchObject({ code: "BERTH_CONTEXT_OVERFLOW", status: 400, param: "max_tokens" });
    expect(toHttpError(Object.assign(new Error("busy"), { code: "BERTH_OVERLOADED" }))).toMatchObject({
      status: 429,
      type: "rate_limit_error",
    });
  });

  it("names the zod field the way OpenAI names params", () => {
    const schema = z.object({ messages: z.array(z.object({ role: z.enum(["user"]) })) });
    const result = schema.safeParse({ messages: [{ role: "user" }, { role: "wizard" }] });
    const mapped = toHttpError(result.error);
    expect(mapped).toMatchObject({ code: "BERTH_INVALID_REQUEST", param: "messages[1].role" });
    expect(mapped.message.startsWith("messages[1].role: ")).toBe(true);
  });

  it("maps fastify's parser errors and hides unknown failures", () => {
    expect(
      toHttpError(Object.assign(new Error("too large"), { code: "FST_ERR_CTP_BODY_TOO_LARGE" })).status,
    ).toBe(413);
    expect(
      toHttpError(Object.assign(new Error("no"), { code: "FST_ERR_CTP_INVALID_MEDIA_TYPE" })).status,
    ).toBe(415);
    const unknown = toHttpError(new TypeError("x is undefined"));
    expect(unknown).toMatchObject({ code: "BERTH_INTERNAL", status: 500, message: "internal server error" });
  });

  it("leaves in OpenAI's shape", () => {
    expect(errorBody(new HttpError("BERTH_DRAINING", "shutting down"))).toEqual({
      error: { message: "shutting down", type: "server_error", param: null, code: "BERTH_DRAINING" },
    });
  });
});
