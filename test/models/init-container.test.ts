// The rendered Kubernetes init container works as rendered: its command line and environment
// (with the Secret's keys, as envFrom gives them) run as a local process against the hub-compatible
// test server pull a private model into the volume, and the server container's own command line
// serves the file it is given. The volume is a temp dir standing in for /models (the mount point is
// the only thing changed). A second pod sharing the cache claim downloads nothing.
import { existsSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { MODEL_MOUNT, renderDeployment } from "../../src/k8s/render.js";
import { checkModelFile } from "../../src/models/check.js";
import { parseSpecText } from "../../src/spec/load.js";
import { runBerth as run } from "../support/berth-cli.js";
import { type HubServer, startHubServer } from "../support/hub-server.js";
import { type ServeProcess, startServe } from "../support/serve-process.js";
import { isolatedEnv, makeHubFolder, PRIVATE_REPO, TOKEN } from "./fixtures.js";

interface Container {
  command: string[];
  args: string[];
  env?: Array<{ name: string; value: string }>;
  envFrom?: Array<{ secretRef: { name: string } }>;
}

let root: string;
let scratch: string;
let hub: HubServer;
let served: ServeProcess | undefined;

beforeAll(async () => {
  root = await makeHubFolder();
  scratch = await mkdtemp(join(tmpdir(), "berth-init-"));
  hub = await startHubServer({ root, privateRepos: [PRIVATE_REPO], tokens: [TOKEN] });
});

afterAll(async () => {
  served?.kill();
  await hub?.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

describe("the rendered init container, run as rendered", () => {
  const [deployment] = parseSpecText(`apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: private-gpt2 }
spec:
  model:
    source: hf://${PRIVATE_REPO}:Q8_0
    contextSize: 128
    cache: { claimName: model-cache, size: 1Gi }
    credentialsSecret: hf-credentials
  engine: { parallel: 1, threads: 1 }
  resources: { cpu: "1", memory: 1Gi }
`);
  if (!deployment) throw new Error("no deployment");
  const objects = renderDeployment(deployment);
  const pod = (
    objects.find((object) => object.kind === "Deployment") as unknown as {
      spec: { template: { spec: { initContainers: Container[]; containers: Container[] } } };
    }
  ).spec.template.spec;
  const init = pod.initContainers[0] as Container;
  const server = pod.containers[0] as Container;

  /** The volume mounted at /models: the same paths under a temp dir. */
  const mount = (volume: string) => (value: string) =>
    value === MODEL_MOUNT || value.startsWith(`${MODEL_MOUNT}/`)
      ? volume + value.slice(MODEL_MOUNT.length)
      : value;

  /** The container's environment: its env entries, then the Secret's keys (envFrom). */
  function containerEnv(volume: string, secret: Record<string, string> | undefined): NodeJS.ProcessEnv {
    const env = isolatedEnv(join(scratch, "home"));
    delete env.BERTH_HOME;
    delete env.HF_HOME;
    for (const { name, value } of init.env ?? []) env[name] = mount(volume)(value);
    if (secret && init.envFrom?.some((from) => from.secretRef.name === "hf-credentials"))
      Object.assign(env, secret);
    return env;
  }

  it("pulls the private model with the token from the Secret into the path the server is given", async () => {
    expect(init.command).toEqual(["berth"]);
    expect(server.command).toEqual(["berth"]);
    // The token is only ever a Secret reference: it appears nowhere in the manifests.
    expect(stringify(objects)).not.toContain(TOKEN);
    const volume = join(scratch, "claim");
    // What `kubectl create secret generic hf-credentials --from-literal=HF_TOKEN=...` would hold; the
    // mirror's address too, since no pod here reaches huggingface.co.
    const secret = { HF_TOKEN: TOKEN, HF_ENDPOINT: hub.url };
    const first = await run(init.args.map(mount(volume)), containerEnv(volume, secret));
    expect(first.stderr).toContain(`pull hf://${PRIVATE_REPO}:Q8_0`);
    expect(first.code, first.stderr).toBe(0);

    const modelArg = server.args[server.args.indexOf("--model") + 1] ?? "";
    expect(modelArg.startsWith(`${MODEL_MOUNT}/`)).toBe(true);
    const modelFile = mount(volume)(modelArg);
    expect(existsSync(modelFile), `${modelFile}\n${first.stderr}`).toBe(true);
    await checkModelFile(modelFile);

    // A second replica's init container on the same claim: nothing is downloaded again.
    const fetched = hub.requests.filter(
      (request) => request.bytesSent > 0 && request.method === "GET",
    ).length;
    const second = await run(init.args.map(mount(volume)), containerEnv(volume, secret));
    expect(second.code).toBe(0);
    expect(hub.requests.filter((request) => request.bytesSent > 0 && request.method === "GET").length).toBe(
      fetched,
    );

    // The server container's command line serves that file (address and port changed for the test).
    const serverArgs: string[] = [];
    for (let index = 1; index < server.args.length; index++) {
      const arg = server.args[index] ?? "";
      if (arg === "--port" || arg === "--host") {
        index += 1;
        continue;
      }
      serverArgs.push(mount(volume)(arg));
    }
    served = await startServe(serverArgs, { env: isolatedEnv(join(scratch, "server-home")) });
    const models = (await (await fetch(`${served.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(models.data.map((model) => model.id)).toEqual(["private-gpt2"]);
    served.kill();
    await served.exited;
    served = undefined;
  });

  it("without the Secret the pull fails with one line naming the repo, and leaves no model file", async () => {
    const volume = join(scratch, "claim-no-secret");
    const result = await run(init.args.map(mount(volume)), {
      ...containerEnv(volume, undefined),
      HF_ENDPOINT: hub.url,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(PRIVATE_REPO);
    expect(result.stderr).toMatch(/BERTH_MODEL_SOURCE_UNAUTHORIZED/);
    const modelArg = server.args[server.args.indexOf("--model") + 1] ?? "";
    expect(existsSync(mount(volume)(modelArg))).toBe(false);
  });
});
