import { defineConfig } from "vitest/config";

// The default suite: unit tests beside the code and end-to-end tests under test/
// that need only Node and the project's own tiny models. The Kubernetes and
// container-image suites have their own configs (they need Go-built binaries, podman).
export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["test/k8s/**", "test/image/**", "node_modules/**", "dist/**"],
    pool: "forks",
    maxWorkers: 2,
    // Generous: real processes on 2 shared cores; each test bounds its own waits with deadlines.
    testTimeout: 300_000,
    hookTimeout: 180_000,
    globalSetup: ["test/global-setup.ts"],
  },
});
