import { defineConfig } from "vitest/config";

// The container-image suite (`npm run test:image`): podman, skopeo, umoci and Debian's docker-registry
// against the Dockerfile and `berth build`. One file at a time: podman builds and model servers share
// the machine's two cores. Skips with a message where podman is not installed.
export default defineConfig({
  test: {
    include: ["test/image/**/*.test.ts"],
    exclude: ["node_modules/**", "dist/**"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 900_000,
    hookTimeout: 900_000,
    globalSetup: ["test/global-setup.ts"],
  },
});
