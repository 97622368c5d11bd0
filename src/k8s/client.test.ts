// The client's failures before and without a cluster: kubeconfig problems and an API server that does
// not answer (a closed port: the fault is injected, nothing is mocked). The k8s suite covers real answers.
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createKubeClient } from "./client.js";
import { K8sError } from "./errors.js";

const dir = mkdtempSync(join(tmpdir(), "berth-kubeconfig-"));

function kubeconfig(server: string, namespace?: string): string {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "${server}" } }]
users: [{ name: u, user: { token: secret } }]
contexts:
  - { name: main, context: { cluster: c, user: u${namespace ? `, namespace: ${namespace}` : ""} } }
  - { name: other, context: { cluster: c, user: u } }
current-context: main
`,
  );
  return file;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function failure(promise: Promise<unknown>): Promise<K8sError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof K8sError)) throw new Error(`expected a K8sError, got ${String(error)}`);
  return error;
}

describe("createKubeClient", () => {
  it("reads the context's namespace and server", async () => {
    const client = await createKubeClient({ kubeconfig: kubeconfig("https://127.0.0.1:6443", "team") });
    expect(client.server).toBe("https://127.0.0.1:6443");
    expect(client.defaultNamespace).toBe("team");
    expect(client.context).toBe("main");
    await client.close();
    const other = await createKubeClient({
      kubeconfig: kubeconfig("https://127.0.0.1:6443", "team"),
      context: "other",
    });
    expect(other.defaultNamespace).toBe("default");
    await other.close();
  });

  it("names a missing kubeconfig file and an unknown context", async () => {
    const missing = await failure(createKubeClient({ kubeconfig: join(dir, "nope.yaml") }));
    expect(missing.code).toBe("BERTH_K8S_CONFIG");
    expect(missing.message).toContain("nope.yaml");
    const context = await failure(createKubeClient({ kubeconfig: kubeconfig("https://x"), context: "prod" }));
    expect(context.code).toBe("BERTH_K8S_CONFIG");
    expect(context.message).toBe('no context "prod" in the kubeconfig (it has: main, other)');
  });

  it("reports an API server that does not answer as unreachable, and counts the attempt", async () => {
    const port = await closedPort();
    const client = await createKubeClient({ kubeconfig: kubeconfig(`https://127.0.0.1:${port}`) });
    const error = await failure(
      client.request({ method: "GET", path: "/api/v1/namespaces/default/configmaps" }),
    );
    expect(error.code).toBe("BERTH_K8S_UNREACHABLE");
    expect(error.message).toContain(
      `cannot reach the Kubernetes API server at https://127.0.0.1:${port}: ECONNREFUSED`,
    );
    expect(client.requestCount).toBe(1);
    await client.close();
  });
});
