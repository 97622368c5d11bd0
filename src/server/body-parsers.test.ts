// Strict body decoding: form fields and JSON must be valid UTF-8 and well formed, or a catalogue error.
import { describe, expect, it } from "vitest";
import { parseFormBody, parseJsonBody } from "./body-parsers.js";
import { HttpError } from "./errors.js";

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return error instanceof HttpError ? error.code : "not an HttpError";
  }
  return undefined;
}

describe("parseFormBody", () => {
  it("decodes +, percent escapes, raw UTF-8 and repeated fields", () => {
    const fields = parseFormBody("text=Hello+w%C3%B6rld&max_length=5&tag=a&tag=b&flag&text2=héllo");
    expect({ ...fields }).toEqual({
      text: "Hello wörld",
      max_length: "5",
      tag: ["a", "b"],
      flag: "",
      text2: "héllo",
    });
  });

  it("keeps __proto__ as an ordinary field", () => {
    const fields = parseFormBody("__proto__=x");
    expect(Object.getPrototypeOf(fields)).toBeNull();
    expect(Object.entries(fields)).toEqual([["__proto__", "x"]]);
  });

  it.each([
    ["text=%FF", "BERTH_INVALID_UTF8"],
    ["text=%C3%28", "BERTH_INVALID_UTF8"],
    ["text=\uFFFD", "BERTH_INVALID_UTF8"],
    ["text=100%", "BERTH_INVALID_REQUEST"],
    ["text=%zz", "BERTH_INVALID_REQUEST"],
  ])("refuses %j with %s", (body, code) => {
    expect(codeOf(() => parseFormBody(body))).toBe(code);
  });
});

describe("parseJsonBody", () => {
  it("parses UTF-8 JSON", () => {
    expect(parseJsonBody(Buffer.from('{"text":"héllo"}'))).toEqual({ text: "héllo" });
  });

  it.each([
    [Buffer.from(""), "BERTH_INVALID_JSON"],
    [Buffer.from("  \n"), "BERTH_INVALID_JSON"],
    [Buffer.from("{"), "BERTH_INVALID_JSON"],
    [Buffer.from([0x22, 0xc3, 0x22]), "BERTH_INVALID_UTF8"],
  ])("refuses %j with %s", (body, code) => {
    expect(codeOf(() => parseJsonBody(body))).toBe(code);
  });
});
