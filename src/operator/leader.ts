// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it: the holder
// renews the Lease every retry period; another candidate takes it over once it has seen the same
// record, unchanged, for a whole lease duration (measured on its own clock, so clocks need not
// agree); a leader that cannot renew within the renew deadline stops acting before anyone else may
// start. A graceful stop hands the Lease back at once (holder cleared), so the next one need not wait.
import type { KubeClient } from "../k8s/client.js";
import { K8sError } from "../k8s/errors.js";
import { abortableDelay } from "./delay.js";

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** Who this candidate is (pod name, or host + pid). */
  identity: string;
  /** How long a Lease not renewed stays with its holder. Default 15 s (client-go's default). */
  leaseDurationMs?: number;
  /** A leader that could not renew for this long stops leading. Default 10 s. Below the lease duration. */
  renewDeadlineMs?: number;
  /** How often to renew, and to try to acquire. Default 2 s. */
  retryPeriodMs?: number;
  onStartedLeading: () => Promise<void> | void;
  onStoppedLeading: () => Promise<void> | void;
  log?: (line: string) => void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  readonly #options: Required<Omit<LeaderElectionOptions, "log">> & Pick<LeaderElectionOptions, "log">;
  readonly #abort = new AbortController();
  #leading = false;
  #running: Promise<void> | undefined;
  /** The last record seen and when this candidate first saw it (its own clock). */
  #observed: { key: string; at: number } | undefined;
  #lease: Lease | undefined;
  /** Set when the last look found the Lease held by another candidate. */
  #otherHolder: string | undefined;
  /** How the last try went: undefined before the first; the API server's error, if it failed. */
  #lastTry: { error?: string } | undefined;

  constructor(options: LeaderElectionOptions) {
    this.#options = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ...options,
    };
    if (this.#options.renewDeadlineMs >= this.#options.leaseDurationMs) {
      throw new Error(
        `the renew deadline (${this.#options.renewDeadlineMs} ms) must be shorter than the lease duration (${this.#options.leaseDurationMs} ms)`,
      );
    }
  }

  get leading(): boolean {
    return this.#leading;
  }

  /**
   * How the last try to acquire or renew went (for readiness): undefined before the first answer;
   * the holder it saw when another candidate leads; the error when the API server did not answer.
   */
  get lastTry(): { holder?: string; error?: string } | undefined {
    if (this.#lastTry === undefined) return undefined;
    return { ...this.#lastTry, ...(this.#otherHolder === undefined ? {} : { holder: this.#otherHolder }) };
  }

  /** Campaigns (and leads) until stop(). */
  start(): Promise<void> {
    this.#running ??= this.#campaign();
    return this.#running;
  }

  /** Stops leading (the callbacks finish first), releases the Lease if held, and ends the campaign. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  async #campaign(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs } = this.#options;
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      if (!(await this.#tryAcquireOrRenew())) {
        await abortableDelay(jittered(retryPeriodMs), signal);
        continue;
      }
      this.#leading = true;
      this.#options.log?.(`leading: holds Lease ${this.#options.namespace}/${this.#options.name}`);
      await this.#options.onStartedLeading();
      let lastRenew = Date.now();
      while (!signal.aborted) {
        await abortableDelay(retryPeriodMs, signal);
        if (signal.aborted) break;
        if (await this.#tryAcquireOrRenew()) lastRenew = Date.now();
        // Someone else holds it (it expired in their eyes): stop at once, not at the deadline.
        else if (this.#otherHolder !== undefined || Date.now() - lastRenew >= renewDeadlineMs) break;
      }
      this.#leading = false;
      await this.#options.onStoppedLeading();
      if (signal.aborted) {
        await this.#release();
        return;
      }
      this.#options.log?.(
        this.#otherHolder !== undefined
          ? `lost the Lease to ${this.#otherHolder}: stopped leading`
          : `lost the Lease (not renewed for ${renewDeadlineMs} ms): stopped leading`,
      );
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, identity, leaseDurationMs } = this.#options;
    const path = leasePath(namespace, name);
    const now = new Date();
    const spec = (previous: LeaseSpec | undefined, holdingAlready: boolean): LeaseSpec => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      acquireTime: holdingAlready && previous?.acquireTime ? previous.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (holdingAlready ? 0 : 1),
    });
    try {
      const current = await client.request<Lease>({ method: "GET", path, allowStatus: [404] });
      this.#otherHolder = undefined;
      this.#lastTry = {};
      if (current.status === 404) {
        const created = await client.request<Lease>({
          method: "POST",
          path: leasePath(namespace),
          body: {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name, namespace },
            spec: { ...spec(undefined, false), leaseTransitions: 0 },
          },
          allowStatus: [409],
        });
        if (created.status === 409) return false; // another candidate created it first
        this.#remember(created.body);
        return true;
      }
      const lease = current.body;
      const holder = lease.spec?.holderIdentity ?? "";
      const key = `${lease.metadata.resourceVersion}`;
      if (this.#observed?.key !== key) this.#observed = { key, at: Date.now() };
      const holdingAlready = holder === identity;
      this.#otherHolder = holder !== "" && !holdingAlready ? holder : undefined;
      const expired = Date.now() - this.#observed.at >= (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
      if (holder !== "" && !holdingAlready && !expired) return false;
      const updated = await client.request<Lease>({
        method: "PUT",
        path,
        // resourceVersion makes this a compare-and-swap: of two candidates, one wins and one gets 409.
        body: { ...lease, spec: spec(lease.spec, holdingAlready) },
        allowStatus: [409],
      });
      if (updated.status === 409) return false;
      if (!holdingAlready)
        this.#options.log?.(`acquired Lease ${namespace}/${name} (previous holder: ${holder || "none"})`);
      this.#remember(updated.body);
      return true;
    } catch (error) {
      if (error instanceof K8sError || (error as { name?: string }).name === "AbortError") {
        this.#lastTry = { error: (error as Error).message };
        if (!this.#abort.signal.aborted) this.#options.log?.(`leader election: ${(error as Error).message}`);
        return false;
      }
      throw error;
    }
  }

  #remember(lease: Lease): void {
    this.#lease = lease;
    this.#observed = { key: `${lease.metadata.resourceVersion}`, at: Date.now() };
  }

  /** Hands the Lease back: no holder, so the next candidate takes it on its next try. */
  async #release(): Promise<void> {
    const lease = this.#lease;
    if (!lease) return;
    const { client, namespace, name } = this.#options;
    const now = microTime(new Date());
    try {
      await client.request({
        method: "PUT",
        path: leasePath(namespace, name),
        body: {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: "",
            leaseDurationSeconds: 1,
            renewTime: now,
            acquireTime: now,
          },
        },
        allowStatus: [409],
      });
      this.#options.log?.(`released Lease ${namespace}/${name}`);
    } catch (error) {
      this.#options.log?.(`could not release the Lease: ${(error as Error).message}`);
    }
  }
}

function leasePath(namespace: string, name?: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;
}

/** Up to 20% later, so candidates that started together do not ask together. */
function jittered(ms: number): number {
  return Math.round(ms * (1 + 0.2 * Math.random()));
}
