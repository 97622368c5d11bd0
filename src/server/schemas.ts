// Request bodies of the model server's routes, parsed with zod at the edge: what each field may be,
// and the OpenAI parameters Berth does not implement, rejected with a clear message instead of ignored.

import { z } from "zod";

/** OpenAI allows up to 4 stop sequences. */
export const MAX_STOP_SEQUENCES = 4;
export const MAX_STOP_LENGTH = 256;
/** Far above any context this server runs; larger values are a client bug, not a context overflow. */
export const MAX_TOKENS_LIMIT = 1_000_000;

const stopSequence = z
  .string({ error: "a stop sequence must be a string" })
  .min(1, "a stop sequence must not be empty")
  .max(MAX_STOP_LENGTH, `a stop sequence has at most ${MAX_STOP_LENGTH} characters`);
const stopList = z
  .array(stopSequence)
  .max(MAX_STOP_SEQUENCES, `at most ${MAX_STOP_SEQUENCES} stop sequences are allowed`);
// The form is chosen first, then checked: a z.union of the two forms reports only the union's own
// message when both fail, which hid the real limit (10,000 strings got "must be a string or an array").
const stopSchema = z
  .unknown()
  .transform((value, context): string | string[] | null | undefined => {
    if (value === null || value === undefined) return value;
    const schema = typeof value === "string" ? stopSequence : Array.isArray(value) ? stopList : undefined;
    if (!schema) {
      context.addIssue({ code: "custom", message: "stop must be a string or an array of strings" });
      return z.NEVER;
    }
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    for (const issue of result.error.issues) {
      context.addIssue({ code: "custom", message: issue.message, path: issue.path });
    }
    return z.NEVER;
  })
  .optional();

const maxTokensSchema = z.number().int().min(1).max(MAX_TOKENS_LIMIT).nullish();

/** Sampling fields common to /v1/completions and /v1/chat/completions. */
const samplingFields = {
  model: z.string().min(1, "model must not be empty"),
  max_tokens: maxTokensSchema,
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  // Not OpenAI (vLLM's extension): 0 or -1 disable top-k.
  top_k: z.number().int().min(-1).max(100_000).nullish(),
  seed: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER).nullish(),
  stop: stopSchema,
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  n: z
    .number()
    .int()
    .refine((value) => value === 1, "only n=1 is supported (one choice per request)")
    .nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  // Not OpenAI (vLLM's extension): keep generating past end-of-sequence, for benchmarks.
  ignore_eos: z.boolean().nullish(),
  // Accepted and ignored, as the OpenAI API documents it (abuse monitoring).
  user: z.string().max(256).nullish(),
  logit_bias: z
    .record(z.string(), z.number())
    .refine((bias) => Object.keys(bias).length === 0, "logit_bias is not supported")
    .nullish(),
};

const tokenIds = z.array(z.number().int().min(0)).min(1, "prompt must not be empty");

export const completionRequestSchema = z.object({
  ...samplingFields,
  prompt: z.union(
    [
      z.string().min(1, "prompt must not be empty"),
      z.array(z.string().min(1, "prompt must not be empty")).length(1, "exactly one prompt per request"),
      tokenIds,
      z.array(tokenIds).length(1, "exactly one prompt per request"),
    ],
    { error: "prompt must be a string, an array with one string, or an array of token ids" },
  ),
  echo: z.boolean().nullish(),
  best_of: z
    .number()
    .int()
    .refine((value) => value === 1, "only best_of=1 is supported")
    .nullish(),
  logprobs: z
    .number()
    .int()
    .refine((value) => value === 0, "logprobs is not supported")
    .nullish(),
  suffix: z
    .string()
    .refine((value) => value.length === 0, "suffix is not supported")
    .nullish(),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

const textPart = z.object({ type: z.literal("text"), text: z.string() });

const messageSchema = z.object({
  role: z.enum(["system", "developer", "user", "assistant"], {
    error: "role must be one of system, developer, user, assistant",
  }),
  content: z
    .union([z.string(), z.array(textPart).min(1)], {
      error: "content must be a string or an array of text parts",
    })
    .nullish(),
  name: z.string().max(256).nullish(),
});
export type ChatMessageInput = z.infer<typeof messageSchema>;

function unsupported(what: string) {
  return z
    .unknown()
    .refine((value) => value === undefined || value === null, `${what} is not supported`)
    .optional();
}

export const chatCompletionRequestSchema = z.object({
  ...samplingFields,
  messages: z.array(messageSchema).min(1, "messages must not be empty"),
  max_completion_tokens: maxTokensSchema,
  logprobs: z
    .boolean()
    .refine((value) => value === false, "logprobs is not supported")
    .nullish(),
  tools: unsupported("tools"),
  tool_choice: unsupported("tool_choice"),
  functions: unsupported("functions"),
  function_call: unsupported("function_call"),
  response_format: z
    .object({ type: z.string() })
    .refine((format) => format.type === "text", "only response_format {type: text} is supported")
    .nullish(),
});
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

// Form fields arrive as strings: "50" must count as the number 50, "abc" must not.
const integerFromForm = z.preprocess(
  (value) => (typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value),
  z.number().int().min(1).max(MAX_TOKENS_LIMIT),
);

/** The seed's POST /generate: `text` and optional `max_length` (total tokens, prompt included). */
export const generateRequestSchema = z.object({
  text: z.string({ error: "text is required and must be a string" }).min(1, "text must not be empty"),
  max_length: integerFromForm.optional(),
});
export type GenerateRouteRequest = z.infer<typeof generateRequestSchema>;

/** x-berth-timeout-ms: a per-request deadline in milliseconds (1 ms to 1 hour). */
export const timeoutHeaderSchema = z.preprocess(
  (value) => (typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value),
  z.number().int().min(1).max(3_600_000),
);
