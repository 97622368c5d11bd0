// A model's gateway policy from its spec: auth (with its keys loaded), rate limits, routing.
// Resolved once per deployment object, so `berth apply` (a new object) re-reads keys and settings.
import type { ModelDeployment } from "../spec/index.js";
import { type KeySourceContext, type ModelAuth, resolveModelAuth } from "./auth.js";
import type { UpstreamDirectory } from "./directory.js";
import type { RoutingSettings } from "./proxy.js";
import type { RateLimits } from "./ratelimit.js";

export interface ModelPolicy {
  auth: ModelAuth;
  limits: RateLimits;
  routing: RoutingSettings;
}

export const DEFAULT_ROUTING: RoutingSettings = {
  strategy: "least-load",
  prefixLength: 256,
  loadFactor: 1.25,
};

/** The policy of a model without a deployment (a directory that knows none): spec defaults. */
const NO_DEPLOYMENT = {
  spec: { auth: {}, rateLimit: {}, routing: DEFAULT_ROUTING },
} as unknown as ModelDeployment;

export async function resolveModelPolicy(
  deployment: ModelDeployment | undefined,
  model: string,
  listenHost: string,
  keySources: KeySourceContext,
): Promise<ModelPolicy> {
  const spec = (deployment ?? NO_DEPLOYMENT).spec;
  const auth = await resolveModelAuth(deployment ?? NO_DEPLOYMENT, model, listenHost, keySources);
  const limits: RateLimits = {
    ...(spec.rateLimit.requestsPerMinute === undefined
      ? {}
      : { requestsPerMinute: spec.rateLimit.requestsPerMinute }),
    ...(spec.rateLimit.tokensPerMinute === undefined
      ? {}
      : { tokensPerMinute: spec.rateLimit.tokensPerMinute }),
  };
  const routing: RoutingSettings = {
    strategy: spec.routing.strategy,
    prefixLength: spec.routing.prefixLength,
    loadFactor: spec.routing.loadFactor,
  };
  return { auth, limits, routing };
}

export class PolicyCache {
  private readonly byDeployment = new WeakMap<ModelDeployment, Promise<ModelPolicy>>();
  private readonly withoutDeployment = new Map<string, Promise<ModelPolicy>>();
  /** Policies already resolved, so the request path needs no await once a model was seen. */
  private readonly settled = new WeakMap<Promise<ModelPolicy>, ModelPolicy>();

  constructor(
    private readonly directory: UpstreamDirectory,
    private readonly listenHost: string,
    private readonly keySources: KeySourceContext,
  ) {}

  /** Rejects with a GatewayConfigError when the model's auth is on without keys. */
  policy(model: string): Promise<ModelPolicy> {
    const deployment = this.directory.deployment(model);
    const cache = deployment ? this.byDeployment : undefined;
    const cached = deployment ? cache?.get(deployment) : this.withoutDeployment.get(model);
    if (cached) return cached;
    const resolved = resolveModelPolicy(deployment, model, this.listenHost, this.keySources);
    resolved.then(
      (policy) => this.settled.set(resolved, policy),
      () => {},
    );
    if (deployment) this.byDeployment.set(deployment, resolved);
    else this.withoutDeployment.set(model, resolved);
    return resolved;
  }

  /** The model's policy if it is resolved already (the common case), else undefined. */
  resolvedPolicy(model: string): ModelPolicy | undefined {
    const deployment = this.directory.deployment(model);
    const pending = deployment ? this.byDeployment.get(deployment) : this.withoutDeployment.get(model);
    return pending ? this.settled.get(pending) : undefined;
  }

  /** Resolves every model's policy; throws the first configuration error. */
  async checkAll(): Promise<void> {
    await Promise.all(this.directory.models().map((model) => this.policy(model)));
  }
}
