// Chat prompts on the real engine and a tiny model: the GGUF chat template (rendered by node-llama-cpp)
// parses special tokens only in template text, never in message text; without a template the default applies.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLlamaEngine } from "../engine/llamacpp.js";
import type { Engine, GenerateRequest } from "../engine/types.js";
import { ensureTinyModel, GPT2_EOT_TOKEN, writeTinyModelAtomically } from "../models/tiny.js";
import { berthHome } from "../util/home.js";
import { createLogger } from "../util/log.js";
import { buildServerApp } from "./app.js";
import { renderDefaultChat } from "./chat-template.js";

// A ChatML-like template with GPT-2's only special token as the turn separator.
const TEMPLATE =
  "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '<|endoftext|>' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";

const engines: Engine[] = [];
afterAll(async () => {
  for (const engine of engines) await engine.close();
});

/** The prompts the engine was asked to run: an observer around the real engine, not a replacement. */
function recordingPrompts(engine: Engine): Array<GenerateRequest["prompt"]> {
  const prompts: Array<GenerateRequest["prompt"]> = [];
  const generate = engine.generate.bind(engine);
  engine.generate = (request) => {
    prompts.push(request.prompt);
    return generate(request);
  };
  return prompts;
}

async function chatPromptTokens(
  engine: Engine,
  messages: Array<{ role: string; content: string }>,
): Promise<number[]> {
  const prompts = recordingPrompts(engine);
  const app = await buildServerApp({ engine, logger: createLogger({ level: "silent" }) });
  const response = await app.inject({
    method: "POST",
    url: "/v1/chat/completions",
    payload: { model: engine.info.id, messages, max_tokens: 1, temperature: 0 },
  });
  await app.close();
  expect(response.statusCode).toBe(200);
  return prompts.at(-1) as number[];
}

describe("chat prompts", () => {
  let withTemplate: Engine;
  let withoutTemplate: Engine;

  beforeAll(async () => {
    const path = join(berthHome(), "models", "server-chat-template-tiny.gguf");
    await writeTinyModelAtomically(path, { shape: "tiny", dtype: "f16", chatTemplate: TEMPLATE });
    withTemplate = await createLlamaEngine({
      modelPath: path,
      modelId: "templated",
      parallel: 1,
      contextPerSequence: 256,
    });
    engines.push(withTemplate);
    const plain = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
    withoutTemplate = await createLlamaEngine({
      modelPath: plain,
      modelId: "plain",
      parallel: 1,
      contextPerSequence: 256,
    });
    engines.push(withoutTemplate);
  });

  it("renders the model's template and tokenizes it as one text with its special tokens", async () => {
    expect(withTemplate.info.chatTemplate).toBe(TEMPLATE);
    const tokens = await chatPromptTokens(withTemplate, [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi there" },
    ]);
    expect(tokens).toEqual(
      // node-llama-cpp renders the generation prompt as the start of an empty assistant turn
      // ("assistant: " + content), so the prompt ends with this template's space.
      withTemplate.tokenize("system: Be brief.<|endoftext|>user: Hi there<|endoftext|>assistant: ", {
        special: true,
      }),
    );
    expect(tokens.filter((token) => token === GPT2_EOT_TOKEN)).toHaveLength(2);
  });

  it("keeps special-token text typed in a message as plain text (no forged turns)", async () => {
    const tokens = await chatPromptTokens(withTemplate, [
      { role: "user", content: "Say <|endoftext|> please" },
    ]);
    // Only the template's separator is the real end-of-text token.
    expect(tokens.filter((token) => token === GPT2_EOT_TOKEN)).toHaveLength(1);
    expect(tokens).toEqual([
      ...withTemplate.tokenize("user: ", { special: true }),
      ...withTemplate.tokenize("Say <|endoftext|> please"),
      ...withTemplate.tokenize("<|endoftext|>assistant: ", { special: true }),
    ]);
  });

  it("uses the documented default template when the model has none", async () => {
    expect(withoutTemplate.info.chatTemplate).toBeUndefined();
    const tokens = await chatPromptTokens(withoutTemplate, [
      { role: "developer", content: "Be brief." },
      { role: "user", content: "Hi" },
    ]);
    expect(tokens).toEqual(withoutTemplate.tokenize("system: Be brief.\nuser: Hi\nassistant:"));
  });

  it("writes an earlier answer that starts with a space right after its colon, as it was generated", () => {
    expect(
      renderDefaultChat([
        { role: "user", content: "Hi" },
        { role: "assistant", content: " Hello there." },
        { role: "assistant", content: "No space." },
        { role: "user", content: " Spaced user text" },
      ]),
    ).toBe("user: Hi\nassistant: Hello there.\nassistant: No space.\nuser:  Spaced user text\nassistant:");
  });
});
