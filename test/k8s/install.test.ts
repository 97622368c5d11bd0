// `berth install` / `berth uninstall` (the CLI, as a user runs it) on the real control plane: a dry run changes
// nothing, install applies every object and waits for the CRD, a second install changes nothing, the operator
// is probed on its health port and --api-keys-secret changes only the gateway Deployment (no Secret RBAC),
// uninstall refuses while a ModelDeployment exists and changes nothing then, and install → uninstall leaves
// nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { CRD_NAME, CRD_PLURAL } from "../../src/k8s/crd.js";
import { INSTALL_NAMESPACE, installObjects } from "../../src/k8s/install.js";
import { runBerth } from "../support/berth-cli.js";
import { type Cluster, clusterAvailability, startCluster } from "./cluster.js";

const availability = clusterAvailability();
const title = availability.ok ? "berth install" : `berth install (skipped: ${availability.reason})`;

const deploymentSchema = z.object({
  spec: z.object({
    template: z.object({
      spec: z.object({
        volumes: z.array(z.unknown()).optional(),
        containers: z.array(
          z.looseObject({
            readinessProbe: z.unknown(),
            livenessProbe: z.unknown(),
            envFrom: z.array(z.unknown()).optional(),
            volumeMounts: z.array(z.unknown()).optional(),
          }),
        ),
      }),
    }),
  }),
});

const installResultSchema = z.object({
  namespace: z.string(),
  objects: z.array(z.object({ kind: z.string(), name: z.string(), action: z.string() })),
});

describe.skipIf(!availability.ok)(title, () => {
  let cluster: Cluster;
  let env: NodeJS.ProcessEnv;

  /** Whether each object `berth install` applies exists now, as "Kind/name". */
  async function present(): Promise<string[]> {
    const found: string[] = [];
    for (const object of installObjects()) {
      const args = [
        "get",
        object.kind.toLowerCase(),
        object.metadata.name,
        "--ignore-not-found",
        "-o",
        "name",
      ];
      if (object.metadata.namespace) args.push("-n", object.metadata.namespace);
      const result = await cluster.kubectl(args);
      if (result.stdout.trim()) found.push(`${object.kind}/${object.metadata.name}`);
    }
    return found;
  }

  const everything = installObjects().map((object) => `${object.kind}/${object.metadata.name}`);

  beforeAll(async () => {
    cluster = await startCluster();
    env = { ...process.env, KUBECONFIG: cluster.kubeconfigPath };
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("--dry-run -o yaml prints every object and creates none", async () => {
    const run = await runBerth(["install", "--dry-run", "-o", "yaml"], env);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const kinds = [...run.stdout.matchAll(/^kind: (\S+)$/gm)].map((match) => match[1]);
    expect(kinds).toEqual(installObjects().map((object) => object.kind));
    expect(await present()).toEqual([]);
  });

  it("installs everything, waits for the CRD, and the controller and gateway roll out", async () => {
    const run = await runBerth(["install", "--json"], env);
    expect(run.stderr).toContain(`CustomResourceDefinition/${CRD_NAME} established`);
    expect(run.code).toBe(0);
    const result = installResultSchema.parse(JSON.parse(run.stdout));
    expect(result.objects.map((object) => `${object.kind}/${object.name}:${object.action}`)).toEqual(
      everything.map((ref) => `${ref}:created`),
    );
    expect(await present()).toEqual(everything);
    // Established means served: kubectl lists the new resource at once.
    const listed = await cluster.kubectl(["get", CRD_PLURAL, "-A"]);
    expect(listed.stderr).toContain("No resources found");
    for (const name of ["berth-operator", "berth-gateway"]) {
      await cluster.kubectl([
        "rollout",
        "status",
        `deployment/${name}`,
        "-n",
        INSTALL_NAMESPACE,
        "--timeout=120s",
      ]);
    }
  });

  it("changes nothing when run again", async () => {
    const run = await runBerth(["install", "--json"], env);
    expect(run.code).toBe(0);
    const actions = installResultSchema.parse(JSON.parse(run.stdout)).objects.map((object) => object.action);
    expect(new Set(actions)).toEqual(new Set(["unchanged"]));
  });

  it("probes the operator on its health port; --api-keys-secret changes only the gateway Deployment, no Secret RBAC", async () => {
    const deployment = async (name: string) =>
      deploymentSchema.parse(await cluster.kubectlJson(["get", "deployment", name, "-n", INSTALL_NAMESPACE]))
        .spec.template.spec;
    const [operator] = (await deployment("berth-operator")).containers;
    expect(operator?.readinessProbe).toMatchObject({ httpGet: { path: "/readyz", port: "health" } });
    expect(operator?.livenessProbe).toMatchObject({ httpGet: { path: "/healthz", port: "health" } });

    const run = await runBerth(["install", "--json", "--api-keys-secret", "berth-api-keys"], env);
    expect(run.code, run.stderr).toBe(0);
    const changed = installResultSchema
      .parse(JSON.parse(run.stdout))
      .objects.filter((object) => object.action !== "unchanged")
      .map((object) => `${object.kind}/${object.name}:${object.action}`);
    expect(changed).toEqual(["Deployment/berth-gateway:configured"]);
    const gateway = await deployment("berth-gateway");
    expect(gateway.volumes).toEqual([
      { name: "api-keys", secret: { secretName: "berth-api-keys", optional: false, defaultMode: 0o440 } },
    ]);
    expect(gateway.containers[0]?.envFrom).toEqual([
      { secretRef: { name: "berth-api-keys", optional: false } },
    ]);
    expect(gateway.containers[0]?.volumeMounts).toEqual([
      { name: "api-keys", mountPath: "/etc/berth/api-keys", readOnly: true },
    ]);
    // The kubelet reads the Secret for the pod; the gateway's ServiceAccount may not.
    const canRead = await cluster.kubectl(
      [
        "auth",
        "can-i",
        "get",
        "secrets",
        "-n",
        INSTALL_NAMESPACE,
        "--as",
        `system:serviceaccount:${INSTALL_NAMESPACE}:berth-gateway`,
      ],
      { allowFailure: true },
    );
    expect(canRead.stdout.trim()).toBe("no");
  });

  it("refuses to uninstall while a ModelDeployment exists, naming it, and removes nothing", async () => {
    await cluster.createNamespace("models");
    const model = {
      apiVersion: "berth.dev/v1alpha1",
      kind: "ModelDeployment",
      metadata: { name: "gpt2", namespace: "models" },
      spec: { model: { source: "hf://openai-community/gpt2" } },
    };
    await cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify(model) });
    const run = await runBerth(["uninstall"], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("BERTH_K8S_IN_USE");
    expect(run.stderr).toContain("models/gpt2");
    expect(run.stderr).toContain("--force");
    expect(await present()).toEqual(everything);
    await cluster.kubectl(["delete", CRD_PLURAL, "gpt2", "-n", "models", "--wait=true"]);
  });

  it("uninstalls everything it installed, says what it removed, and leaves nothing", async () => {
    const run = await runBerth(["uninstall"], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`removed ${everything.length} objects`);
    for (const ref of everything) expect(run.stdout).toContain(ref);
    expect(await present()).toEqual([]);
    const leftovers = await cluster.kubectl([
      "get",
      "crd,namespaces,clusterroles,clusterrolebindings",
      "-l",
      "app.kubernetes.io/part-of=berth",
      "-o",
      "name",
    ]);
    expect(leftovers.stdout.trim()).toBe("");
  });

  it("says there was nothing to remove when run again", async () => {
    const run = await runBerth(["uninstall"], env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("nothing to remove");
  });
});
