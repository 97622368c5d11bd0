// A gateway in a process of its own for bench:gateway (as `berth up` runs it, but over a fixed list
// of replicas): argv[2] is JSON {model, strategy, upstreams: [{id, url}]}; prints {"url":...} when listening.
import { buildGateway } from "../src/gateway/app.js";
import type { Upstream, UpstreamDirectory } from "../src/gateway/directory.js";
import { modelDeploymentSchema } from "../src/spec/index.js";
import { createLogger } from "../src/util/log.js";

interface GatewayProcessConfig {
  model: string;
  strategy: "least-load" | "prefix-hash" | "round-robin";
  upstreams: Array<{ id: string; url: string }>;
  leastLoadChoices?: number;
  loadFactor?: number;
}

const config = JSON.parse(process.argv[2] ?? "{}") as GatewayProcessConfig;
const deployment = modelDeploymentSchema.parse({
  apiVersion: "berth.dev/v1alpha1",
  kind: "ModelDeployment",
  metadata: { name: config.model },
  spec: {
    model: { source: "tiny://tiny" },
    routing: {
      strategy: config.strategy,
      ...(config.loadFactor === undefined ? {} : { loadFactor: config.loadFactor }),
    },
  },
});
const upstreams: Upstream[] = config.upstreams.map((upstream) => ({
  ...upstream,
  model: config.model,
  state: "ready",
  generation: 1,
}));
const directory: UpstreamDirectory = {
  models: () => [config.model],
  deployment: (model) => (model === config.model ? deployment : undefined),
  upstreams: (model) => (model === config.model ? upstreams : []),
  wake: () => {},
  onChange: () => () => {},
};
const gateway = await buildGateway({
  directory,
  logger: createLogger({ level: "warn" }, process.stderr),
  port: 0,
  dashboard: false,
  ...(config.leastLoadChoices === undefined ? {} : { leastLoadChoices: config.leastLoadChoices }),
});
const url = await gateway.listen();
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.once("SIGTERM", () => {
  void gateway.close().then(() => process.exit(0));
});
