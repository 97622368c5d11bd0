import { test } from "vitest";
import { writeTinyModel } from "./tiny.js";

test("try", async () => {
  const { getLlama } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, maxThreads: 2 });
  for (const dtype of ["f16", "q8_0", "f32"] as const) {
    const path = `/tmp/mt/t-${dtype}.gguf`;
    await writeTinyModel(path, { dtype });
    const model = await llama.loadModel({ modelPath: path });
    const context = await model.createContext({ contextSize: 256 });
    for (const prompt of ["Hello world, this is a test.", "The capital of France is"]) {
      const seq = context.getSequence();
      const out: number[] = [];
      for await (const t of seq.evaluate(model.tokenize(prompt), { temperature: 0 })) {
        out.push(t);
        if (out.length >= 40) break;
      }
      console.log(dtype, new Set(out).size, JSON.stringify(model.detokenize(out as never)));
      seq.dispose();
    }
    await context.dispose();
    await model.dispose();
  }
});
