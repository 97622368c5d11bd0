import { defineConfig } from "vitest/config";

// The Kubernetes suite: runs against the real control plane test/k8s/cluster.ts starts (binaries from
// scripts/k8s-testenv/build.sh). One file at a time: each cluster is a few hundred MB and the machine is small;
// bring-up and rollouts are polled with bounded deadlines, so the timeouts here are only outer bounds.
export default defineConfig({
  test: {
    include: ["test/k8s/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    globalSetup: ["test/global-setup.ts"],
  },
});
