// parseModelSource: every scheme's accepted forms, and errors that name the wrong part.
import { describe, expect, test } from "vitest";
import { ModelSourceError } from "./errors.js";
import { parseModelSource, selectGgufFile } from "./sources.js";

describe("parseModelSource", () => {
  test.each([
    ["hf://openai-community/gpt2", { kind: "hf", repo: "openai-community/gpt2", revision: "main" }],
    [
      "hf://org/repo/sub/m-Q8_0.gguf@v1.0",
      { kind: "hf", repo: "org/repo", file: "sub/m-Q8_0.gguf", revision: "v1.0" },
    ],
    ["hf://org/repo:Q4_K_M", { kind: "hf", repo: "org/repo", quant: "Q4_K_M", revision: "main" }],
    [
      "hf://org/repo:q8_0@0123456789abcdef0123456789abcdef01234567",
      { kind: "hf", quant: "q8_0", revision: "0123456789abcdef0123456789abcdef01234567" },
    ],
    [
      `https://example.com/a/m.gguf#sha256=${"AB".repeat(32)}`,
      { kind: "https", url: "https://example.com/a/m.gguf", sha256: "ab".repeat(32), fileName: "m.gguf" },
    ],
    [
      "http://127.0.0.1:8080/m.gguf?x=1",
      { kind: "https", url: "http://127.0.0.1:8080/m.gguf?x=1", fileName: "m.gguf" },
    ],
    ["s3://my-bucket/models/m.gguf", { kind: "s3", bucket: "my-bucket", key: "models/m.gguf" }],
    ["file:///tmp/a%20b.gguf", { kind: "file", path: "/tmp/a b.gguf" }],
    ["file://./m.gguf", { kind: "file", path: "./m.gguf" }],
    ["models/m.gguf", { kind: "file", path: "models/m.gguf" }],
    ["tiny://tiny?dtype=q8_0", { kind: "tiny", shape: "tiny", dtype: "q8_0" }],
    ["tiny://gpt2-124m", { kind: "tiny", shape: "gpt2-124m", dtype: "f16" }],
  ])("%s", (uri, expected) => {
    expect(parseModelSource(uri)).toMatchObject({ uri, ...expected });
  });

  test.each([
    ["", /empty/],
    ["ftp://host/m.gguf", /unknown scheme "ftp:\/\/"/],
    ["hf://gpt2", /"gpt2" names no repository/],
    ["hf://org/re--po", /repository name "re--po"/],
    ["hf://-org/repo", /organization name "-org"/],
    ["hf://org/repo@", /revision after '@' is empty/],
    ["hf://org/repo@a b", /revision "a b"/],
    ["hf://org/repo:", /quantization after ':' is empty/],
    ["hf://org/repo:Q4-K", /quantization "Q4-K"/],
    ["hf://org/repo:Q8_0/file.gguf", /either a file .* or a quantization/],
    ["hf://org/repo/a/../b.gguf", /file path "a\/..\/b.gguf"/],
    ["hf://org/repo?x=1", /no query or fragment/],
    ["https://example.com/m.gguf#sha256=abc", /fragment "#sha256=abc"/],
    ["https://example.com/", /names no file/],
    ["https://user:pw@example.com/m.gguf", /credentials in the URL/],
    ["s3://Bad_Bucket/k", /bucket "Bad_Bucket"/],
    ["s3://bucket", /key names no object/],
    ["s3:///key", /bucket is empty/],
    ["tiny://huge", /unknown tiny shape "huge"/],
    ["tiny://tiny?dtype=q4", /unknown dtype "q4"/],
  ])("refuses %j", (uri, message) => {
    let caught: unknown;
    try {
      parseModelSource(uri);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ModelSourceError);
    expect((caught as ModelSourceError).code).toBe("BERTH_MODEL_SOURCE");
    expect((caught as Error).message).toMatch(message);
  });
});

describe("selectGgufFile", () => {
  const files = [
    ".gitattributes",
    "README.md",
    "m-Q4_K_M.gguf",
    "m-Q8_0.gguf",
    "m-F16-00001-of-00002.gguf",
    "m-F16-00002-of-00002.gguf",
  ];
  test("picks by quantization, case-insensitively, and the first part of a split file", () => {
    expect(selectGgufFile("u", files, "q8_0")).toEqual({ file: "m-Q8_0.gguf" });
    expect(selectGgufFile("u", files, "F16")).toEqual({ file: "m-F16-00001-of-00002.gguf" });
    expect(selectGgufFile("u", ["only.gguf"], undefined)).toEqual({ file: "only.gguf" });
  });
  test("lists the choices when missing or ambiguous", () => {
    const missing = selectGgufFile("u", files, "Q2_K");
    expect("error" in missing && missing.error.code).toBe("BERTH_MODEL_SOURCE_NOT_FOUND");
    expect("error" in missing && missing.error.message).toMatch(/choices: :F16, :Q4_K_M, :Q8_0/);
    const ambiguous = selectGgufFile("u", files, undefined);
    expect("error" in ambiguous && ambiguous.error.code).toBe("BERTH_MODEL_SOURCE_AMBIGUOUS");
    const none = selectGgufFile("u", ["model.safetensors"], undefined);
    expect("error" in none && none.error.code).toBe("BERTH_MODEL_NEEDS_CONVERSION");
  });
});
