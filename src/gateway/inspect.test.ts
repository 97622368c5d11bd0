import { describe, expect, it } from "vitest";
import { inspectFormBody, inspectJsonBody, scanObjectFields } from "./inspect.js";

describe("inspectJsonBody", () => {
  it.each([
    {
      name: "a completion request",
      body: '{"model":"gpt2","prompt":"Hello","max_tokens":16,"stream":true}',
      expected: { model: "gpt2", stream: true, maxTokens: 16 },
    },
    {
      name: "whitespace everywhere",
      body: ' \n{ "model" : "gpt2" ,\t"stream" : false , "max_tokens":\r\n 3 } \n',
      expected: { model: "gpt2", stream: false, maxTokens: 3 },
    },
    {
      name: "model after nested values holding braces and quotes",
      body: '{"messages":[{"role":"user","content":"a } ] { [ \\" , :"}],"logit_bias":{"1":2},"model":"m"}',
      expected: { model: "m", stream: false },
    },
    {
      name: "escaped model name",
      body: '{"model":"a\\"b\\u00e9"}',
      expected: { model: 'a"bé', stream: false },
    },
    { name: "escaped key", body: '{"mo\\u0064el":"x"}', expected: { model: "x", stream: false } },
    {
      name: "duplicate keys: the last wins",
      body: '{"model":"a","model":"b"}',
      expected: { model: "b", stream: false },
    },
    { name: "model of the wrong type", body: '{"model":42}', expected: { stream: false } },
    { name: "no model", body: '{"prompt":"x"}', expected: { stream: false } },
    {
      name: "stream given as a string is not a stream",
      body: '{"stream":"true"}',
      expected: { stream: false },
    },
    {
      name: "max_completion_tokens",
      body: '{"max_completion_tokens":7,"model":"m"}',
      expected: { model: "m", stream: false, maxTokens: 7 },
    },
    {
      name: "seed route max_length",
      body: '{"text":"hi","max_length":50}',
      expected: { stream: false, maxTokens: 50 },
    },
    {
      name: "string with an escaped backslash before its quote",
      body: '{"prompt":"a\\\\","model":"m"}',
      expected: { model: "m", stream: false },
    },
    { name: "empty object", body: "{}", expected: { stream: false } },
  ])("reads $name", ({ body, expected }) => {
    const summary = inspectJsonBody(body);
    expect(summary).toBeDefined();
    expect({
      ...(summary?.model === undefined ? {} : { model: summary.model }),
      stream: summary?.stream,
      ...(summary?.maxTokens === undefined ? {} : { maxTokens: summary.maxTokens }),
    }).toEqual(expected);
  });

  it.each([
    ["empty", ""],
    ["an array", '[{"model":"m"}]'],
    ["a string", '"model"'],
    ["cut off in a string", '{"model":"gp'],
    ["cut off in an array", '{"model":"m","messages":[{"role":"user"}'],
    ["missing colon", '{"model" "m"}'],
    ["trailing garbage", '{"model":"m"} x'],
    ["two objects", '{"model":"m"}{}'],
    ["missing value", '{"model":}'],
    ["trailing comma", '{"model":"m",}'],
    ["a lone brace", "{"],
  ])("rejects %s", (_name, body) => {
    expect(inspectJsonBody(body)).toBeUndefined();
  });

  it("agrees with JSON.parse on generated bodies", () => {
    let seed = 12345;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const pieces = ['"', "\\", "{", "}", "[", "]", ",", ":", "é", "\n", "a", " ", "model"];
    const randomString = () =>
      Array.from(
        { length: Math.floor(random() * 12) },
        () => pieces[Math.floor(random() * pieces.length)],
      ).join("");
    const randomValue = (depth: number): unknown => {
      const kind = Math.floor(random() * (depth > 2 ? 4 : 6));
      if (kind === 0) return randomString();
      if (kind === 1) return Math.floor(random() * 1000) - 500;
      if (kind === 2) return random() < 0.5;
      if (kind === 3) return null;
      if (kind === 4) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(depth + 1));
      return Object.fromEntries(
        Array.from({ length: Math.floor(random() * 4) }, () => [randomString(), randomValue(depth + 1)]),
      );
    };
    for (let i = 0; i < 500; i++) {
      const object: Record<string, unknown> = {};
      for (let k = 0; k < 5; k++) object[k === 2 ? "model" : randomString()] = randomValue(0);
      if (random() < 0.5) object.stream = random() < 0.5;
      const text = JSON.stringify(object, null, random() < 0.3 ? 2 : undefined);
      const summary = inspectJsonBody(text);
      expect(summary).toBeDefined();
      expect(summary?.model).toBe(typeof object.model === "string" ? object.model : undefined);
      expect(summary?.stream).toBe(object.stream === true);
    }
  });
});

describe("promptPrefix", () => {
  it.each([
    { name: "a prompt string", body: '{"prompt":"Hello world"}', length: 5, expected: "Hello" },
    { name: "a prompt shorter than the prefix", body: '{"prompt":"Hi"}', length: 50, expected: "Hi" },
    { name: "escapes in the prefix", body: '{"prompt":"a\\nb\\"c"}', length: 3, expected: "a\nb" },
    { name: "escapes only after the prefix", body: '{"prompt":"abcdef\\n"}', length: 3, expected: "abc" },
    {
      name: "an array of prompts: the first",
      body: '{"prompt":["first","second"]}',
      length: 10,
      expected: "first",
    },
    { name: "token ids: their leading text", body: '{"prompt":[15496,995]}', length: 6, expected: "[15496" },
    { name: "the seed route's text", body: '{"text":"seed text"}', length: 4, expected: "seed" },
    {
      name: "chat messages: roles and contents in order",
      body: '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}]}',
      length: 100,
      expected: "system:Be brief.\nuser:Hi\n",
    },
    {
      name: "chat messages cut at the prefix length",
      body: '{"messages":[{"role":"user","content":"abcdef"}]}',
      length: 7,
      expected: "user:ab",
    },
    { name: "no prompt at all", body: '{"model":"m"}', length: 5, expected: undefined },
    { name: "a number prompt", body: '{"prompt":5}', length: 5, expected: undefined },
  ])("of $name", ({ body, length, expected }) => {
    expect(inspectJsonBody(body)?.promptPrefix(length)).toBe(expected);
  });
});

describe("inspectFormBody", () => {
  it("reads the seed route's form", () => {
    const summary = inspectFormBody("text=Hello+there&max_length=30&model=gpt2");
    expect(summary.model).toBe("gpt2");
    expect(summary.maxTokens).toBe(30);
    expect(summary.stream).toBe(false);
    expect(summary.promptPrefix(5)).toBe("Hello");
  });

  it("has no model when the form names none", () => {
    expect(inspectFormBody("text=x").model).toBeUndefined();
  });
});

describe("scanObjectFields", () => {
  it("returns raw value spans of wanted fields only", () => {
    const text = '{"a":1,"b":{"c":[1,2]},"d":"x"}';
    const fields = scanObjectFields(text, new Set(["b", "d"]));
    expect([...(fields ?? new Map())].map(([key, [start, end]]) => [key, text.slice(start, end)])).toEqual([
      ["b", '{"c":[1,2]}'],
      ["d", '"x"'],
    ]);
  });
});
