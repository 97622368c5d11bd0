// The seed app's POST /generate, unchanged for its clients: `text` and optional `max_length` from a
// form (urlencoded or multipart) or JSON body, answering {"generated_text": text + continuation}.

import formbody from "@fastify/formbody";
import multipart from "@fastify/multipart";
import type { FastifyInstance } from "fastify";
import { type FormFields, parseFormBody, readMultipartFields } from "./body-parsers.js";
import { GenerationRun } from "./generation.js";
import type { RouteDeps } from "./route-deps.js";
import { generateRequestSchema } from "./schemas.js";

/** Form fields may repeat; the seed read one value (Flask's request.form[...]), so a repeat is refused by zod. */
function fieldsAsBody(fields: FormFields): Record<string, unknown> {
  return { ...fields };
}

/**
 * Registered in its own encapsulated plugin, so the form and multipart parsers exist for this route
 * only: the OpenAI routes answer a form body with 415.
 */
export async function registerGenerateRoute(app: FastifyInstance, deps: RouteDeps): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(formbody, { parser: parseFormBody, bodyLimit: deps.limits.bodyLimitBytes });
    await scope.register(multipart, { limits: { fileSize: deps.limits.bodyLimitBytes } });

    scope.post("/generate", async (request) => {
      const context = deps.contextOf(request);
      const engine = deps.readyEngine();
      const raw = request.isMultipart()
        ? fieldsAsBody(
            await readMultipartFields(request, { maxPartBytes: deps.limits.bodyLimitBytes, maxParts: 16 }),
          )
        : request.body;
      const body = generateRequestSchema.parse(raw);
      const promptTokens = engine.tokenize(body.text);
      // Hugging Face generate(): max_length counts the prompt. When the prompt already reaches it,
      // generate() warns and still produces one token; so does this route.
      const maxLength = body.max_length ?? deps.limits.defaultMaxLength;
      const maxTokens = Math.max(1, maxLength - promptTokens.length);
      if (deps.limits.logPrompts) context.prompt = body.text;
      // The seed called generate() without sampling options: greedy decoding.
      const run = new GenerationRun(
        engine,
        { prompt: promptTokens, maxTokens, temperature: 0 },
        context,
        deps.metrics,
      );
      try {
        const result = await run.collect();
        if (deps.limits.logPrompts) context.completion = result.text;
        return { generated_text: body.text + result.text };
      } finally {
        run.close();
      }
    });
  });
}
