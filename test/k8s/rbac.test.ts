// Least privilege, shown on the real API server: as the operator's and the gateway's ServiceAccounts (real
// tokens), every API call in OPERATOR_API_CALLS / GATEWAY_API_CALLS is allowed; with any one verb taken out of
// the installed Role or ClusterRole, exactly that call fails with a 403 that names the verb and the resource.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serverSideApply } from "../../src/k8s/apply.js";
import { createKubeClient, type KubeClient, type KubeRequest } from "../../src/k8s/client.js";
import { K8sError } from "../../src/k8s/errors.js";
import {
  type ApiCall,
  GATEWAY_API_CALLS,
  GATEWAY_NAME,
  INSTALL_NAMESPACE,
  installObjects,
  OPERATOR_API_CALLS,
  OPERATOR_NAME,
  rulesFor,
  type Verb,
} from "../../src/k8s/install.js";
import { INSTALL_FIELD_MANAGER, installBerth } from "../../src/k8s/install-apply.js";
import { type Cluster, clusterAvailability, pollUntil, startCluster } from "./cluster.js";

const availability = clusterAvailability();
const title = availability.ok ? "install RBAC" : `install RBAC (skipped: ${availability.reason})`;
/** Where cluster-wide calls are tried: any namespace the components do not live in. */
const WORK_NAMESPACE = "rbac-probe";
const PROBE_NAME = "rbac-probe";

const GROUP_VERSIONS: Record<string, string> = {
  "": "v1",
  apps: "v1",
  autoscaling: "v2",
  policy: "v1",
  "networking.k8s.io": "v1",
  "monitoring.coreos.com": "v1",
  "berth.dev": "v1alpha1",
  "coordination.k8s.io": "v1",
  "discovery.k8s.io": "v1",
};

interface Probe {
  component: string;
  call: ApiCall;
  verb: Verb;
}

const probes = (component: string, calls: readonly ApiCall[]): Probe[] =>
  calls.flatMap((call) => call.verbs.map((verb) => ({ component, call, verb })));

const label = (probe: Probe) =>
  `${probe.component}: ${probe.verb} ${probe.call.resource}${probe.call.group ? `.${probe.call.group}` : ""}`;

/** The request a verb on a resource makes (dry-run for writes): what RBAC is asked about, as the component asks it. */
function requestFor({ call, verb }: Probe): KubeRequest {
  const version = GROUP_VERSIONS[call.group];
  if (!version) throw new Error(`no API version known for group "${call.group}"`);
  const root = call.group === "" ? `/api/${version}` : `/apis/${call.group}/${version}`;
  const namespace = call.scope === "install" ? INSTALL_NAMESPACE : WORK_NAMESPACE;
  const [plural, subresource] = call.resource.split("/");
  const collection = `${root}/namespaces/${namespace}/${plural}`;
  const item = `${collection}/${PROBE_NAME}${subresource ? `/${subresource}` : ""}`;
  const dryRun = { dryRun: "All" };
  switch (verb) {
    case "get":
      return { method: "GET", path: item };
    // Selecting the probe's name only: no events or items to read, whatever the namespace holds.
    case "list":
      return { method: "GET", path: collection, query: { fieldSelector: `metadata.name=${PROBE_NAME}` } };
    case "watch":
      return {
        method: "GET",
        path: collection,
        query: { watch: "true", timeoutSeconds: "1", fieldSelector: `metadata.name=${PROBE_NAME}` },
      };
    case "create":
      return { method: "POST", path: collection, query: dryRun, body: { metadata: { name: PROBE_NAME } } };
    case "update":
      return { method: "PUT", path: item, query: dryRun, body: { metadata: { name: PROBE_NAME } } };
    case "patch":
      return {
        method: "PATCH",
        path: item,
        query: dryRun,
        body: {},
        contentType: "application/merge-patch+json",
      };
    case "delete":
      return { method: "DELETE", path: item, query: dryRun };
  }
}

/** undefined when RBAC let the call through (whatever the answer after that: 404, 422, …); else the 403. */
async function forbidden(client: KubeClient, probe: Probe): Promise<K8sError | undefined> {
  try {
    await client.request(requestFor(probe));
    return undefined;
  } catch (error) {
    if (error instanceof K8sError && error.code === "BERTH_K8S_FORBIDDEN") return error;
    if (error instanceof K8sError) return undefined;
    throw error;
  }
}

describe.skipIf(!availability.ok)(title, () => {
  let cluster: Cluster;
  let admin: KubeClient;
  const asComponent = new Map<string, KubeClient>();

  beforeAll(async () => {
    cluster = await startCluster();
    admin = await createKubeClient({ kubeconfig: cluster.kubeconfigPath });
    await cluster.createNamespace(WORK_NAMESPACE);
    await installBerth(admin, { operatorReplicas: 0, gatewayReplicas: 0 });
    for (const name of [OPERATOR_NAME, GATEWAY_NAME]) {
      const token = await cluster.kubectl(["create", "token", name, "-n", INSTALL_NAMESPACE]);
      const kubeconfig = await cluster.tokenKubeconfig(token.stdout.trim());
      asComponent.set(name, await createKubeClient({ kubeconfig }));
    }
  });

  afterAll(async () => {
    for (const client of asComponent.values()) await client.close();
    await admin?.close();
    await cluster?.stop();
  });

  const all = [...probes(OPERATOR_NAME, OPERATOR_API_CALLS), ...probes(GATEWAY_NAME, GATEWAY_API_CALLS)];

  it("allows every call in the lists, as the component's ServiceAccount", async () => {
    // The roles were just created: the authorizer sees them once its informer has (a missing verb times out).
    const allowed: string[] = [];
    for (const probe of all) {
      const client = asComponent.get(probe.component) as KubeClient;
      await pollUntil(async () => ((await forbidden(client, probe)) === undefined ? true : undefined), {
        what: `${label(probe)} allowed`,
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      allowed.push(label(probe));
    }
    expect(allowed).toHaveLength(all.length);
  });

  it("denies what no list asks for", async () => {
    const operator = asComponent.get(OPERATOR_NAME) as KubeClient;
    const gateway = asComponent.get(GATEWAY_NAME) as KubeClient;
    const secrets: ApiCall = { group: "", resource: "secrets", verbs: ["get"], scope: "cluster", why: "" };
    const modelDeployments: ApiCall = {
      group: "berth.dev",
      resource: "modeldeployments",
      verbs: ["delete"],
      scope: "cluster",
      why: "",
    };
    expect(await forbidden(operator, { component: OPERATOR_NAME, call: secrets, verb: "get" })).toBeDefined();
    expect(
      await forbidden(operator, { component: OPERATOR_NAME, call: modelDeployments, verb: "delete" }),
    ).toBeDefined();
    expect(
      await forbidden(gateway, { component: GATEWAY_NAME, call: modelDeployments, verb: "delete" }),
    ).toBeDefined();
    const patchDeployments: ApiCall = {
      group: "apps",
      resource: "deployments",
      verbs: ["patch"],
      scope: "cluster",
      why: "",
    };
    expect(
      await forbidden(gateway, { component: GATEWAY_NAME, call: patchDeployments, verb: "patch" }),
    ).toBeDefined();
  });

  it("needs each verb: without it, that call gets a 403 naming the verb and the resource", async () => {
    const roles = installObjects().filter(
      (object) => object.kind === "ClusterRole" || object.kind === "Role",
    );
    const applyRules = async (component: string, calls: readonly ApiCall[]) => {
      for (const role of roles.filter((object) => object.metadata.name === component)) {
        const scope = role.kind === "Role" ? "install" : "cluster";
        const path =
          role.kind === "Role"
            ? `/apis/rbac.authorization.k8s.io/v1/namespaces/${INSTALL_NAMESPACE}/roles/${component}`
            : `/apis/rbac.authorization.k8s.io/v1/clusterroles/${component}`;
        await serverSideApply(admin, { ...role, rules: rulesFor(calls, scope) }, path, {
          fieldManager: INSTALL_FIELD_MANAGER,
          force: true,
          dryRun: false,
        });
      }
    };
    const shown: string[] = [];
    for (const probe of all) {
      const calls = probe.component === OPERATOR_NAME ? OPERATOR_API_CALLS : GATEWAY_API_CALLS;
      const without = calls.map((call) =>
        call === probe.call ? { ...call, verbs: call.verbs.filter((verb) => verb !== probe.verb) } : call,
      );
      await applyRules(probe.component, without);
      const client = asComponent.get(probe.component) as KubeClient;
      // RBAC reaches the authorizer through an informer: wait for the change, never for a fixed time.
      const error = await pollUntil(() => forbidden(client, probe), {
        what: `a 403 for ${label(probe)} once the verb is removed`,
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      const apiMessage = error.causes[0]?.message ?? "";
      expect(apiMessage).toContain(`cannot ${probe.verb} resource "${probe.call.resource}"`);
      expect(apiMessage).toContain(`in API group "${probe.call.group}"`);
      expect(error.message).toContain(`may not ${probe.verb}`);
      shown.push(label(probe));
      await applyRules(probe.component, calls);
    }
    expect(shown).toHaveLength(all.length);
    for (const probe of all) {
      const client = asComponent.get(probe.component) as KubeClient;
      await pollUntil(async () => ((await forbidden(client, probe)) === undefined ? true : undefined), {
        what: `${label(probe)} allowed again with the full role`,
        timeoutMs: 30_000,
        intervalMs: 50,
      });
    }
  });
});
