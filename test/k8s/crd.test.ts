// The ModelDeployment CRD on the real API server: the checked-in copy is accepted and Established; every spec
// of the corpus gets the same verdict from the API server as from zod, naming the same field (the drift test);
// a bad CR is refused by the API server with nothing created; printer columns, defaults and the scale subresource.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import { createKubeClient, type KubeClient } from "../../src/k8s/client.js";
import { CRD_GROUP, CRD_NAME, CRD_PLURAL, CRD_VERSION } from "../../src/k8s/crd.js";
import { K8sError } from "../../src/k8s/errors.js";
import { modelDeploymentSchema } from "../../src/spec/schema.js";
import { type Cluster, clusterAvailability, startCluster } from "./cluster.js";
import { CORPUS, type CorpusCase, KNOWN_DIFFERENCES } from "./crd-corpus.js";

const availability = clusterAvailability();
const title = availability.ok
  ? "ModelDeployment CRD"
  : `ModelDeployment CRD (skipped: ${availability.reason})`;
const REPO = fileURLToPath(new URL("../..", import.meta.url));
const CRD_FILE = `${REPO}deploy/crds/${CRD_NAME}.yaml`;
const NAMESPACE = "crd-test";
const collection = `/apis/${CRD_GROUP}/${CRD_VERSION}/namespaces/${NAMESPACE}/${CRD_PLURAL}`;

function document(testCase: Pick<CorpusCase, "spec" | "metadataName">, name = "corpus") {
  return {
    apiVersion: `${CRD_GROUP}/${CRD_VERSION}`,
    kind: "ModelDeployment",
    metadata: { name: testCase.metadataName ?? name, namespace: NAMESPACE },
    spec: testCase.spec,
  };
}

/** The fields zod blames ("spec.replicas.max"; an unknown key is named with its path). */
function zodFields(body: unknown): string[] {
  const parsed = modelDeploymentSchema.safeParse(body);
  if (parsed.success) return [];
  return parsed.error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    if (issue.code === "unrecognized_keys") return issue.keys.map((key) => [...path, key].join("."));
    return [path.join(".")];
  });
}

/** The fields the API server blames for a create (dry run: nothing is stored either way). */
async function apiFields(client: KubeClient, body: unknown): Promise<string[]> {
  try {
    await client.request({
      method: "POST",
      path: collection,
      query: { dryRun: "All", fieldValidation: "Strict" },
      body,
    });
    return [];
  } catch (error) {
    if (!(error instanceof K8sError) || error.code !== "BERTH_K8S_REJECTED") throw error;
    const fields = error.causes.flatMap((cause) => {
      if (cause.field && cause.field !== "<nil>") return [cause.field];
      // Causes without a field are notes ("some validation rules were not checked") or a root rule, whose
      // message names the field it checks.
      const named = /^Invalid value: (metadata\.name) /.exec(cause.message)?.[1];
      return named ? [named] : [];
    });
    return [...new Set(fields)];
  }
}

const modelDeploymentJson = z.object({
  spec: z.record(z.string(), z.unknown()),
  status: z.record(z.string(), z.unknown()).optional(),
});

describe.skipIf(!availability.ok)(title, () => {
  let cluster: Cluster;
  let client: KubeClient;

  beforeAll(async () => {
    cluster = await startCluster();
    client = await createKubeClient({ kubeconfig: cluster.kubeconfigPath });
    await cluster.createNamespace(NAMESPACE);
  });

  afterAll(async () => {
    await client?.close();
    await cluster?.stop();
  });

  it("accepts the checked-in CRD (kubectl apply) and establishes it", async () => {
    await cluster.kubectl(["apply", "--server-side", "-f", CRD_FILE]);
    await cluster.kubectl(["wait", "--for=condition=Established", `crd/${CRD_NAME}`, "--timeout=60s"]);
    const crd = z
      .object({
        status: z.object({ conditions: z.array(z.object({ type: z.string(), status: z.string() })) }),
      })
      .parse(await cluster.kubectlJson(["get", "crd", CRD_NAME]));
    expect(crd.status.conditions).toContainEqual({ type: "Established", status: "True" });
    expect(crd.status.conditions).toContainEqual({ type: "NamesAccepted", status: "True" });
  });

  it("accepts every example spec file as a CR", async () => {
    for (const file of ["examples/seed-gpt2/berth.yaml", "examples/local/berth.yaml"]) {
      for (const doc of parseAllDocuments(readFileSync(`${REPO}${file}`, "utf8"))) {
        const body = doc.toJS() as { metadata: Record<string, unknown> };
        body.metadata.namespace = NAMESPACE;
        expect({ file, fields: await apiFields(client, body) }).toEqual({ file, fields: [] });
      }
    }
  });

  it("judges every corpus spec as zod does, naming the same field (drift test)", async () => {
    const disagreements: string[] = [];
    for (const testCase of CORPUS) {
      const body = document(testCase);
      const fromZod = zodFields(body);
      const fromApi = await apiFields(client, body);
      const expected = testCase.field === undefined ? [] : [testCase.field];
      const agree =
        testCase.field === undefined
          ? fromZod.length === 0 && fromApi.length === 0
          : fromZod.includes(testCase.field) && fromApi.includes(testCase.field);
      if (!agree) {
        disagreements.push(
          `${testCase.name}: expected ${JSON.stringify(expected)}, zod ${JSON.stringify(fromZod)}, API server ${JSON.stringify(fromApi)}`,
        );
      }
    }
    expect(disagreements).toEqual([]);
  });

  it("differs from zod only where the corpus says so, and exactly so", async () => {
    for (const difference of KNOWN_DIFFERENCES) {
      const body = document(difference);
      expect({ name: difference.name, zod: zodFields(body), api: await apiFields(client, body) }).toEqual({
        name: difference.name,
        zod: difference.zodField === undefined ? [] : [difference.zodField],
        api: difference.apiField === undefined ? [] : [difference.apiField],
      });
    }
  });

  it.each([
    ["min > max", { model: { source: "tiny://tiny" }, replicas: { min: 3, max: 2 } }, "spec.replicas.max"],
    ["an unknown field", { model: { source: "tiny://tiny" }, replica: { min: 1 } }, "spec.replica"],
    ["a wrong type", { model: { source: "tiny://tiny" }, port: "http" }, "spec.port"],
  ])(
    "refuses a CR with %s at kubectl apply, naming the field, and creates nothing",
    async (_what, spec, field) => {
      const manifest = JSON.stringify(document({ spec }, "bad"));
      const result = await cluster.kubectl(["apply", "-f", "-"], { input: manifest, allowFailure: true });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(field);
      const list = await cluster.kubectlJson(["get", CRD_PLURAL, "-n", NAMESPACE]);
      expect((list as { items: unknown[] }).items).toEqual([]);
    },
  );

  it("stores the zod defaults (applied by the API server) and parses back to the same spec", async () => {
    const input = { model: { source: "tiny://tiny" }, replicas: { min: 0, max: 3 } };
    await cluster.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify(document({ spec: input }, "defaults")),
    });
    const stored = modelDeploymentJson.parse(
      await cluster.kubectlJson(["get", CRD_PLURAL, "defaults", "-n", NAMESPACE]),
    );
    expect(stored.spec).toMatchObject({
      replicas: { min: 0, max: 3 },
      autoscaling: { stableWindow: "1m", panicWindow: "6s", targetInFlight: 6 },
      resources: { cpu: "2", memory: "4Gi" },
      engine: { kind: "llamacpp", parallel: 8 },
    });
    const fromStored = modelDeploymentSchema.parse(document({ spec: stored.spec }, "defaults")).spec;
    const fromInput = modelDeploymentSchema.parse(document({ spec: input }, "defaults")).spec;
    expect(fromStored).toEqual(fromInput);
  });

  it("shows Ready, Desired, Model, Available and Age in kubectl get", async () => {
    await cluster.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify(
        document({ spec: { model: { source: "hf://openai-community/gpt2" } } }, "columns"),
      ),
    });
    const status = {
      status: {
        observedGeneration: 1,
        replicas: 2,
        readyReplicas: 1,
        desiredReplicas: 2,
        selector: "app.kubernetes.io/instance=columns",
        conditions: [
          {
            type: "Available",
            status: "True",
            reason: "MinimumReplicasAvailable",
            message: "1 of 2 replicas ready",
            lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          },
        ],
      },
    };
    await cluster.kubectl([
      "patch",
      "modeldeployment/columns",
      "-n",
      NAMESPACE,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify(status),
    ]);
    const table = await cluster.kubectl(["get", "md", "columns", "-n", NAMESPACE]);
    const [header, row] = table.stdout
      .trim()
      .split("\n")
      .map((line) => line.trim().split(/\s+/));
    expect(header).toEqual(["NAME", "READY", "DESIRED", "MODEL", "AVAILABLE", "AGE"]);
    expect(row?.slice(0, 5)).toEqual(["columns", "1", "2", "hf://openai-community/gpt2", "True"]);
  });

  it("scales through the scale subresource (kubectl scale), and refuses a count outside min..max", async () => {
    const spec = { model: { source: "tiny://tiny" }, replicas: { min: 1, max: 4 } };
    await cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify(document({ spec }, "scaled")) });
    await cluster.kubectl(["scale", "modeldeployment/scaled", "-n", NAMESPACE, "--replicas=3"]);
    const scaled = modelDeploymentJson.parse(
      await cluster.kubectlJson(["get", CRD_PLURAL, "scaled", "-n", NAMESPACE]),
    );
    expect(scaled.spec.replicas).toEqual({ min: 1, max: 4, desired: 3 });

    const refused = await cluster.kubectl(
      ["scale", "modeldeployment/scaled", "-n", NAMESPACE, "--replicas=9"],
      {
        allowFailure: true,
      },
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("spec.replicas.desired");
    expect(refused.stderr).toContain("must be between spec.replicas.min and spec.replicas.max");
    const after = modelDeploymentJson.parse(
      await cluster.kubectlJson(["get", CRD_PLURAL, "scaled", "-n", NAMESPACE]),
    );
    expect(after.spec.replicas).toEqual({ min: 1, max: 4, desired: 3 });

    const scale = z
      .object({ spec: z.object({ replicas: z.number() }) })
      .parse(
        await cluster.kubectlJson(["get", "--subresource=scale", "modeldeployment/scaled", "-n", NAMESPACE]),
      );
    expect(scale.spec.replicas).toBe(3);
  });
});
