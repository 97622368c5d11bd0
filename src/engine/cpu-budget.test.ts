// The engine's CPU budget: the thread-count rule as a table, and the cgroup readers against cgroup
// trees laid out in a temp folder the way the kernel mounts them (v2 unified, v1 cpu,cpuacct).
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { defaultThreadCount, parseCfsQuota, parseCpuMax, readCgroupCpuQuota } from "./cpu-budget.js";

describe("defaultThreadCount", () => {
  it.each([
    { physicalCores: 2, affinityCpus: 2, quotaCpus: undefined, threads: 2, why: "no limits: the cores" },
    {
      physicalCores: 8,
      affinityCpus: 16,
      quotaCpus: undefined,
      threads: 8,
      why: "hyper-threads do not count",
    },
    { physicalCores: 8, affinityCpus: 2, quotaCpus: undefined, threads: 2, why: "taskset -c 0,1" },
    { physicalCores: 8, affinityCpus: 8, quotaCpus: 4, threads: 4, why: "a 4-CPU Kubernetes limit" },
    { physicalCores: 8, affinityCpus: 8, quotaCpus: 1.5, threads: 1, why: "fractional quota rounds down" },
    { physicalCores: 8, affinityCpus: 8, quotaCpus: 0.25, threads: 1, why: "at least one thread" },
    { physicalCores: 0, affinityCpus: 4, quotaCpus: undefined, threads: 4, why: "unknown cores ignored" },
  ])("$why → $threads", ({ physicalCores, affinityCpus, quotaCpus, threads }) => {
    expect(defaultThreadCount({ physicalCores, affinityCpus, quotaCpus })).toBe(threads);
  });
});

describe("quota parsing", () => {
  it.each([
    ["max 100000", undefined],
    ["max", undefined],
    ["200000 100000\n", 2],
    ["150000 100000", 1.5],
    ["50000", 0.5],
    ["garbage 100000", undefined],
    ["0 100000", undefined],
  ])("cpu.max %j → %s", (text, cpus) => {
    expect(parseCpuMax(text)).toBe(cpus);
  });

  it.each([
    ["-1", "100000", undefined],
    ["400000", "100000", 4],
    ["25000", "100000", 0.25],
    ["100000", "0", undefined],
  ])("cfs quota %s / period %s → %s", (quota, period, cpus) => {
    expect(parseCfsQuota(quota, period)).toBe(cpus);
  });
});

describe("readCgroupCpuQuota", () => {
  let root: string | undefined;
  afterEach(async () => {
    if (root) await rm(root, { recursive: true, force: true });
    root = undefined;
  });

  async function tree(files: Record<string, string>): Promise<string> {
    root = await mkdtemp(join(tmpdir(), "berth-cgroup-"));
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), text);
    }
    return root;
  }

  it("v2: the tightest cpu.max along the path, a parent's limit binding the child", async () => {
    const dir = await tree({
      "proc-self-cgroup": "0::/kubepods/pod1/ctr\n",
      "fs/cpu.max": "max 100000\n",
      "fs/kubepods/pod1/cpu.max": "300000 100000\n",
      "fs/kubepods/pod1/ctr/cpu.max": "max 100000\n",
    });
    expect(await readCgroupCpuQuota(join(dir, "fs"), join(dir, "proc-self-cgroup"))).toBe(3);
  });

  it("v2 with no limit anywhere: undefined", async () => {
    const dir = await tree({
      "proc-self-cgroup": "0::/user.slice\n",
      "fs/user.slice/cpu.max": "max 100000\n",
    });
    expect(await readCgroupCpuQuota(join(dir, "fs"), join(dir, "proc-self-cgroup"))).toBeUndefined();
  });

  it("v1 (cpu,cpuacct mount, hybrid hierarchy as on this machine): the cfs quota", async () => {
    const dir = await tree({
      "proc-self-cgroup": "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/\n",
      "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "150000\n",
      "fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
      "fs/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
      "fs/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    });
    expect(await readCgroupCpuQuota(join(dir, "fs"), join(dir, "proc-self-cgroup"))).toBe(1.5);
  });

  it("no /proc/self/cgroup (not Linux): undefined", async () => {
    const dir = await tree({});
    expect(await readCgroupCpuQuota(join(dir, "fs"), join(dir, "missing"))).toBeUndefined();
  });
});
