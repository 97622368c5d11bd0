// How many CPUs this process may really use: the smallest of the physical cores, the CPUs its
// affinity mask allows, and its cgroup CPU quota (a Kubernetes limit, `docker run --cpus`, systemd).
// The engine's default thread count comes from here; a thread beyond the budget only spins.
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";

export interface CpuBudget {
  /** Physical cores llama.cpp counts for math (hyper-threads excluded). */
  physicalCores: number;
  /** CPUs the scheduler may run this process on (sched_getaffinity; `taskset`, cpusets). */
  affinityCpus: number;
  /** The cgroup quota in CPUs (quota / period), the tightest along the cgroup path; undefined: none. */
  quotaCpus: number | undefined;
}

/**
 * Threads for decoding: one per CPU the process may use, never more than the physical cores.
 * A fractional quota rounds down (1.5 CPUs → 1 thread): llama.cpp's threads meet at a barrier every
 * layer, so a thread that the quota throttles stalls all the others.
 */
export function defaultThreadCount(budget: CpuBudget): number {
  const limits = [budget.physicalCores, budget.affinityCpus];
  if (budget.quotaCpus !== undefined) limits.push(Math.max(1, Math.floor(budget.quotaCpus)));
  return Math.max(1, Math.min(...limits.filter((limit) => Number.isFinite(limit) && limit > 0)));
}

/** cgroup v2 `cpu.max` ("max 100000" or "150000 100000") → CPUs; undefined when unlimited or unreadable. */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === "max") return undefined;
  return ratio(Number(quota), Number(period ?? "100000"));
}

/** cgroup v1 cfs quota (-1: none) and period in microseconds → CPUs. */
export function parseCfsQuota(quotaText: string, periodText: string): number | undefined {
  const quota = Number(quotaText.trim());
  if (quota < 0) return undefined;
  return ratio(quota, Number(periodText.trim()));
}

function ratio(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return quota / period;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Every ancestor of a cgroup path, itself first: "/a/b" → ["/a/b", "/a", "/"]. */
function selfAndAncestors(cgroupPath: string): string[] {
  const parts = cgroupPath.split("/").filter((part) => part.length > 0);
  const paths: string[] = [];
  for (let length = parts.length; length >= 0; length--) paths.push(`/${parts.slice(0, length).join("/")}`);
  return paths;
}

function tightest(values: Array<number | undefined>): number | undefined {
  const set = values.filter((value): value is number => value !== undefined);
  return set.length === 0 ? undefined : Math.min(...set);
}

/**
 * The cgroup CPU quota of this process in CPUs, v2 or v1, the tightest along its cgroup path
 * (a parent's limit binds the child too). `root` is the cgroup mount (tests pass a folder).
 */
export async function readCgroupCpuQuota(
  root = "/sys/fs/cgroup",
  procSelfCgroup = "/proc/self/cgroup",
): Promise<number | undefined> {
  const membership = await readText(procSelfCgroup);
  if (membership === undefined) return undefined;
  const quotas: Array<number | undefined> = [];
  for (const line of membership.split("\n")) {
    // "hierarchy-id:controllers:path"; v2 is "0::/path"; v1 names the cpu controller.
    const match = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, id, controllers = "", path = "/"] = match;
    if (id === "0" && controllers === "") {
      for (const dir of selfAndAncestors(path)) {
        const text = await readText(join(root, dir, "cpu.max"));
        if (text !== undefined) quotas.push(parseCpuMax(text));
      }
    } else if (controllers.split(",").includes("cpu")) {
      // v1 mounts the controller at cpu, cpu,cpuacct or cpuacct,cpu depending on the distribution.
      for (const mount of ["cpu", "cpu,cpuacct", "cpuacct,cpu"]) {
        for (const dir of selfAndAncestors(path)) {
          const quota = await readText(join(root, mount, dir, "cpu.cfs_quota_us"));
          const period = await readText(join(root, mount, dir, "cpu.cfs_period_us"));
          if (quota !== undefined && period !== undefined) quotas.push(parseCfsQuota(quota, period));
        }
      }
    }
  }
  return tightest(quotas);
}

/** This process's budget; `physicalCores` from llama.cpp (node-llama-cpp's `cpuMathCores`). */
export async function readCpuBudget(physicalCores: number): Promise<CpuBudget> {
  return {
    physicalCores,
    affinityCpus: availableParallelism(),
    quotaCpus: await readCgroupCpuQuota(),
  };
}
