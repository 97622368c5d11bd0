// The OpenMP engine build is found by the cmake options that name its folder: scripts/build-engine.sh
// builds with them (NODE_LLAMA_CPP_CMAKE_OPTION_*), its self-test loads with them, and the engine asks
// getLlama for them. If the three drift apart, Berth silently keeps the prebuilt binary.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OPENMP_BUILD_OPTIONS } from "./llamacpp.js";

const root = join(import.meta.dirname, "..", "..");

describe("the OpenMP engine build's options", () => {
  it("are the ones scripts/build-engine.sh builds with", () => {
    const script = readFileSync(join(root, "scripts", "build-engine.sh"), "utf8");
    const built = Object.fromEntries(
      [...script.matchAll(/^export NODE_LLAMA_CPP_CMAKE_OPTION_(\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]),
    );
    expect(built).toEqual(OPENMP_BUILD_OPTIONS);
    expect(OPENMP_BUILD_OPTIONS.GGML_OPENMP).toBe("ON");
  });

  it("are the ones its self-test loads the build with", () => {
    const selftest = readFileSync(join(root, "scripts", "engine-selftest.mjs"), "utf8");
    const block = /cmakeOptions: \{([^}]*)\}/.exec(selftest)?.[1] ?? "";
    const loaded = Object.fromEntries([...block.matchAll(/(\w+): "(\w+)"/g)].map((m) => [m[1], m[2]]));
    expect(loaded).toEqual(OPENMP_BUILD_OPTIONS);
  });
});
