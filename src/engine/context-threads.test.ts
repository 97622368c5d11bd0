// setContextThreads reaches into node-llama-cpp's context (it has no public setter): this test, on
// the real engine, fails if an upgrade changes the fields it uses.
import { getLlama } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { ensureTinyModel } from "../models/tiny.js";
import { setContextThreads } from "./llamacpp.js";

describe("setContextThreads", () => {
  it("changes the threads of the context's next decode, both ways", async () => {
    const modelPath = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
    const llama = await getLlama({ gpu: false, build: "never", maxThreads: 0 });
    const model = await llama.loadModel({ modelPath });
    try {
      const context = await model.createContext({ contextSize: 64, threads: 2 });
      const sequence = context.getSequence();
      await sequence.evaluateWithoutGeneratingNewTokens(model.tokenize("Hello world"));
      expect(context.currentThreads).toBe(2);
      setContextThreads(context, 1);
      await sequence.evaluateWithoutGeneratingNewTokens(model.tokenize(", this"));
      expect(context.currentThreads).toBe(1);
      setContextThreads(context, 2);
      await sequence.evaluateWithoutGeneratingNewTokens(model.tokenize(" is"));
      expect(context.currentThreads).toBe(2);
      await context.dispose();
    } finally {
      await model.dispose();
    }
  });
});
