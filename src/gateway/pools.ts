// Upstream connections: one undici Pool (keep-alive connections) per replica origin, created on
// first use and closed once the replica leaves the directory and its requests are done.
import { Pool } from "undici";

export interface PoolOptions {
  /** Connections per replica at most; requests beyond wait in the pool's queue. */
  connectionsPerUpstream: number;
  connectTimeoutMs: number;
}

export const DEFAULT_POOL_OPTIONS: PoolOptions = { connectionsPerUpstream: 256, connectTimeoutMs: 5_000 };

export interface UpstreamTarget {
  pool: Pool;
  /** Path prefix of the replica's base URL ("" for a bare origin). */
  basePath: string;
}

export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();
  /** Parsed replica URLs (parsing one per request showed in profiles). */
  private readonly targets = new Map<string, { origin: string; basePath: string }>();

  constructor(private readonly options: PoolOptions = DEFAULT_POOL_OPTIONS) {}

  target(url: string): UpstreamTarget {
    let parsed = this.targets.get(url);
    if (!parsed) {
      const { origin, pathname } = new URL(url);
      parsed = { origin, basePath: pathname.replace(/\/+$/, "") };
      this.targets.set(url, parsed);
    }
    let pool = this.pools.get(parsed.origin);
    if (!pool || pool.closed || pool.destroyed) {
      pool = new Pool(parsed.origin, {
        connections: this.options.connectionsPerUpstream,
        connect: { timeout: this.options.connectTimeoutMs },
        // Deadlines are the gateway's (per request); undici's own 300 s timers would cut long generations.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.pools.set(parsed.origin, pool);
    }
    return { pool, basePath: parsed.basePath };
  }

  /** Closes (gracefully: queued and running requests finish) the pools of origins not in `urls`. */
  retainOnly(urls: Iterable<string>): void {
    const list = [...urls];
    const keep = new Set(list.map((url) => new URL(url).origin));
    for (const url of this.targets.keys()) if (!list.includes(url)) this.targets.delete(url);
    for (const [origin, pool] of this.pools) {
      if (keep.has(origin)) continue;
      this.pools.delete(origin);
      pool.close().catch(() => {});
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.close().catch(() => {})));
  }

  /** Tears every connection down at once (requests in flight fail). */
  async destroy(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy().catch(() => {})));
  }
}
