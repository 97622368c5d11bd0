// A test decode with a node-llama-cpp package's own build, in a child process: exit 0 when the
// engine loads the model and generates, else the child's exit code or signal. Used by
// scripts/build-engine.sh to find a CPU variant that crashes on this machine.
// Usage: node scripts/engine-selftest.mjs PACKAGE_DIR MODEL.gguf
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [packageDir, model] = process.argv.slice(2);
if (process.env.BERTH_ENGINE_SELFTEST_CHILD === "1") {
  const { getLlama, LlamaLogLevel } = await import(pathToFileURL(join(packageDir, "dist", "index.js")).href);
  const llama = await getLlama({
    gpu: false,
    build: "never",
    logLevel: LlamaLogLevel.error,
    cmakeOptions: {
      GGML_NATIVE: "OFF",
      GGML_CPU_ALL_VARIANTS: "ON",
      GGML_BACKEND_DL: "ON",
      GGML_OPENMP: "ON",
    },
  });
  if (llama.buildType !== "localBuild")
    throw new Error(`loaded the ${llama.buildType} binary, not the new build`);
  const loaded = await llama.loadModel({ modelPath: model });
  const context = await loaded.createContext({ contextSize: 256, threads: 2 });
  const sequence = context.getSequence();
  let generated = 0;
  for await (const _token of sequence.evaluate(loaded.tokenize("Hello there"), { temperature: 0 })) {
    if (++generated >= 8) break;
  }
  console.log(`engine self-test: ${generated} tokens with the new build`);
  process.exit(0);
}
const child = spawnSync(process.execPath, [process.argv[1], packageDir, model], {
  env: { ...process.env, BERTH_ENGINE_SELFTEST_CHILD: "1" },
  stdio: "inherit",
});
if (child.status === 0) process.exit(0);
console.error(`engine self-test failed: ${child.signal ? `signal ${child.signal}` : `exit ${child.status}`}`);
process.exit(1);
