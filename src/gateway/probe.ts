// Tells a hung replica from a slow one: while a request waits long for response headers, the
// gateway asks the replica's /healthz with a short timeout; no answer means it hangs.
import { Agent, request } from "undici";

export class LivenessProbe {
  private readonly agent: Agent;
  private readonly running = new Map<string, Promise<boolean>>();

  constructor(private readonly timeoutMs: number) {
    // Its own connections: the replica's pool may be full of the very requests that wait.
    this.agent = new Agent({ connections: 4, connect: { timeout: timeoutMs }, keepAliveTimeout: 1_000 });
  }

  /** True when GET {url}/healthz answers within the timeout. Concurrent checks of one URL share one probe. */
  alive(url: string): Promise<boolean> {
    const existing = this.running.get(url);
    if (existing) return existing;
    const probe = this.probe(url).finally(() => this.running.delete(url));
    this.running.set(url, probe);
    return probe;
  }

  private async probe(url: string): Promise<boolean> {
    try {
      const response = await request(`${url.replace(/\/+$/, "")}/healthz`, {
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.timeoutMs),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      await response.body.dump();
      return response.statusCode < 500;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
