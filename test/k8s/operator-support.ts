// For the operator's tests on the real control plane: installing the ModelDeployment CRD, running
// `berth operator` as real processes (needs `npm run build`) and waiting for what they print, and
// reading a ModelDeployment's conditions.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { z } from "zod";
import { type Cluster, pollUntil } from "./cluster.js";

const BERTH = join(process.cwd(), "bin", "berth.js");

export async function installCrd(cluster: Cluster, crd: Record<string, unknown>): Promise<void> {
  await cluster.kubectl(["apply", "--server-side", "-f", "-"], { input: JSON.stringify(crd) });
  await cluster.kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/modeldeployments.berth.dev",
  ]);
}

/** A `berth operator` process; its output is kept, and lines can be awaited. */
export class OperatorProcess {
  readonly child: ChildProcess;
  output = "";
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #waiters: Array<{ pattern: RegExp; resolve: (match: RegExpMatchArray) => void }> = [];

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [BERTH, "operator", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
      for (const waiter of [...this.#waiters]) {
        const match = this.output.match(waiter.pattern);
        if (match) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          waiter.resolve(match);
        }
      }
    };
    this.child.stdout?.on("data", collect);
    this.child.stderr?.on("data", collect);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => resolve({ code, signal })),
    );
  }

  /** Resolves when the output matches (already or later); rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    const match = this.output.match(pattern);
    if (match) return Promise.resolve(match);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ pattern, resolve });
      void this.exited.then(({ code, signal }) => {
        const late = this.output.match(pattern);
        if (late) resolve(late);
        else
          reject(
            new Error(
              `berth operator exited (${code ?? signal}) before printing ${pattern}; it printed:\n${this.output}`,
            ),
          );
      });
    });
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

const conditionSchema = z.looseObject({
  type: z.string(),
  status: z.string(),
  reason: z.string(),
  message: z.string(),
  lastTransitionTime: z.string(),
  observedGeneration: z.number(),
});
export const resourceSchema = z.looseObject({
  metadata: z.looseObject({ name: z.string(), uid: z.string(), generation: z.number() }),
  status: z
    .looseObject({
      observedGeneration: z.number(),
      replicas: z.number(),
      readyReplicas: z.number(),
      desiredReplicas: z.number(),
      selector: z.string(),
      conditions: z.array(conditionSchema),
    })
    .optional(),
});
export type ResourceJson = z.output<typeof resourceSchema>;

export async function getResource(cluster: Cluster, namespace: string, name: string): Promise<ResourceJson> {
  return resourceSchema.parse(await cluster.kubectlJson(["get", "modeldeployment", name, "-n", namespace]));
}

export function conditionOf(resource: ResourceJson, type: string) {
  return resource.status?.conditions.find((condition) => condition.type === type);
}

/** Polls the resource until `check` accepts it (status written for the current generation). */
export async function waitForResource(
  cluster: Cluster,
  namespace: string,
  name: string,
  what: string,
  check: (resource: ResourceJson) => boolean,
  timeoutMs = 120_000,
): Promise<ResourceJson> {
  let last: ResourceJson | undefined;
  try {
    return await pollUntil(
      async () => {
        last = await getResource(cluster, namespace, name);
        return last.status?.observedGeneration === last.metadata.generation && check(last) ? last : undefined;
      },
      { what: `${namespace}/${name}: ${what}`, timeoutMs, intervalMs: 250 },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(last?.status)}`);
  }
}
