import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { K8sError } from "./errors.js";
import { kubeconfigFiles, resolveKubeconfig } from "./kubeconfig.js";

const dir = mkdtempSync(join(tmpdir(), "berth-kubeconfig-"));
const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const savedKubeconfig = process.env.KUBECONFIG;
afterEach(() => {
  if (savedKubeconfig === undefined) delete process.env.KUBECONFIG;
  else process.env.KUBECONFIG = savedKubeconfig;
});

describe("resolveKubeconfig", () => {
  it("reads certificates relative to the kubeconfig, the context's namespace and the server", async () => {
    write("ca.crt", "CA");
    write("client.crt", "CERT");
    const path = write(
      "certs.yaml",
      `apiVersion: v1
kind: Config
current-context: dev
clusters:
  - name: dev
    cluster: { server: "https://10.0.0.1:6443", certificate-authority: ca.crt, tls-server-name: api.dev }
users:
  - name: admin
    user: { client-certificate: client.crt, client-key-data: ${Buffer.from("KEY").toString("base64")} }
contexts:
  - name: dev
    context: { cluster: dev, user: admin, namespace: models }
`,
    );
    const resolved = await resolveKubeconfig({ kubeconfig: path });
    expect(resolved?.server).toBe("https://10.0.0.1:6443");
    expect(resolved?.namespace).toBe("models");
    expect(resolved?.tls.ca?.toString()).toBe("CA");
    expect(resolved?.tls.cert?.toString()).toBe("CERT");
    expect(resolved?.tls.key?.toString()).toBe("KEY");
    expect(resolved?.tls.servername).toBe("api.dev");
    expect(await resolved?.headers()).toEqual({});
  });

  it("merges $KUBECONFIG files as kubectl does: the first current-context and the first definition win", async () => {
    const a = write(
      "a.yaml",
      `current-context: b-ctx
clusters: [{ name: shared, cluster: { server: "https://first" } }]
users: [{ name: u, user: { token: from-a } }]
contexts: []
`,
    );
    const b = write(
      "b.yaml",
      `current-context: ignored
clusters: [{ name: shared, cluster: { server: "https://second" } }]
users: [{ name: u, user: { username: x, password: y } }]
contexts: [{ name: b-ctx, context: { cluster: shared, user: u } }]
`,
    );
    process.env.KUBECONFIG = [a, join(dir, "missing.yaml"), b].join(delimiter);
    expect(kubeconfigFiles({})).toHaveLength(3);
    const resolved = await resolveKubeconfig({});
    expect(resolved?.context).toBe("b-ctx");
    expect(resolved?.server).toBe("https://first");
    expect(resolved?.namespace).toBe("default");
    expect(await resolved?.headers()).toEqual({ authorization: "Bearer from-a" });
  });

  it("reads a token file on every request (projected tokens rotate) and encodes basic auth", async () => {
    const tokenFile = write("token", "one\n");
    const path = write(
      "token.yaml",
      `current-context: c
clusters: [{ name: c, cluster: { server: "https://x" } }]
users: [{ name: u, user: { tokenFile: ${tokenFile} } }, { name: basic, user: { username: me, password: pw } }]
contexts: [{ name: c, context: { cluster: c, user: u } }, { name: b, context: { cluster: c, user: basic } }]
`,
    );
    const resolved = await resolveKubeconfig({ kubeconfig: path });
    expect(await resolved?.headers()).toEqual({ authorization: "Bearer one" });
    writeFileSync(tokenFile, "two");
    expect(await resolved?.headers()).toEqual({ authorization: "Bearer two" });
    const basic = await resolveKubeconfig({ kubeconfig: path, context: "b" });
    expect(await basic?.headers()).toEqual({
      authorization: `Basic ${Buffer.from("me:pw").toString("base64")}`,
    });
  });

  it("leaves exec plugins and auth providers to client-node", async () => {
    const path = write(
      "exec.yaml",
      `current-context: c
clusters: [{ name: c, cluster: { server: "https://x" } }]
users: [{ name: u, user: { exec: { apiVersion: client.authentication.k8s.io/v1, command: aws } } }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
`,
    );
    expect(await resolveKubeconfig({ kubeconfig: path })).toBeUndefined();
  });

  it("names what is wrong: an unknown context, a missing certificate file", async () => {
    const path = write(
      "broken.yaml",
      `current-context: c
clusters: [{ name: c, cluster: { server: "https://x", certificate-authority: nope.crt } }]
users: [{ name: u, user: {} }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
`,
    );
    await expect(resolveKubeconfig({ kubeconfig: path, context: "prod" })).rejects.toThrow(
      'no context "prod" in the kubeconfig (it has: c)',
    );
    const error = await resolveKubeconfig({ kubeconfig: path }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(K8sError);
    expect((error as K8sError).message).toContain(
      `cannot read the certificate authority ${join(dir, "nope.crt")}`,
    );
  });
});
