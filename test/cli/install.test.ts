// `berth install` without a cluster, as a user runs it: --dry-run -o yaml with the operator's health
// port and probes, --api-keys-secret in the gateway Deployment, --help saying how, and the Helm chart
// checked with a real `helm template` (helm from scripts/build-helm.sh; skipped without it).
// Spawns `node bin/berth.js` (needs `npm run build`).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { runBerth } from "../support/berth-cli.js";
import { runProcess } from "../support/run-process.js";

const directory = mkdtempSync(join(tmpdir(), "berth-install-cli-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
const env = { ...process.env, KUBECONFIG: join(directory, "no-kubeconfig") };

// biome-ignore lint/suspicious/noExplicitAny: tests walk rendered objects freely
type Json = Record<string, any>;
const documents = (text: string): Json[] =>
  parseAllDocuments(text)
    .map((document) => document.toJS())
    .filter((value) => value !== null);
const deployment = (objects: Json[], name: string) =>
  objects.find((object) => object.kind === "Deployment" && object.metadata.name === name) as Json;

async function dryRun(extra: string[] = []): Promise<Json[]> {
  const run = await runBerth(["install", "--dry-run", "-o", "yaml", ...extra], env);
  expect(run.code, run.stderr).toBe(0);
  return documents(run.stdout);
}

describe("berth install --dry-run -o yaml", () => {
  it("runs the operator with --health-port 8081 and probes it there: /readyz and /healthz", async () => {
    const [container] = deployment(await dryRun(), "berth-operator").spec.template.spec.containers;
    expect(container.args).toEqual(["operator", "--health-port", "8081"]);
    expect(container.ports).toEqual([{ name: "health", containerPort: 8081, protocol: "TCP" }]);
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "health" });
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "health" });
  });

  it("--api-keys-secret: the gateway mounts the Secret at /etc/berth/api-keys and gets it as env", async () => {
    const without = deployment(await dryRun(), "berth-gateway").spec.template.spec;
    expect(without.volumes).toBeUndefined();
    expect(without.containers[0].envFrom).toBeUndefined();

    const objects = await dryRun(["--api-keys-secret", "berth-api-keys"]);
    const pod = deployment(objects, "berth-gateway").spec.template.spec;
    expect(pod.volumes).toEqual([
      { name: "api-keys", secret: { secretName: "berth-api-keys", optional: false, defaultMode: 0o440 } },
    ]);
    expect(pod.containers[0].volumeMounts).toEqual([
      { name: "api-keys", mountPath: "/etc/berth/api-keys", readOnly: true },
    ]);
    expect(pod.containers[0].envFrom).toEqual([{ secretRef: { name: "berth-api-keys", optional: false } }]);
    const rules = objects.filter((object) => /Role$/.test(object.kind));
    expect(JSON.stringify(rules)).not.toContain("secrets");
  });

  it("--help says how a ModelDeployment uses the Secret", async () => {
    const help = await runBerth(["install", "--help"], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--api-keys-secret <name>");
    expect(help.stdout).toContain("apiKeysFrom: file:/etc/berth/api-keys/BERTH_API_KEYS");
    expect(help.stdout).toContain("gateway.apiKeysSecret");
    const operatorHelp = await runBerth(["operator", "--help"], env);
    expect(operatorHelp.stdout).toMatch(/--health-port <port>.*\(default: "8081"\)/s);
    expect(operatorHelp.stdout).toMatch(/--health-host <host>.*\(default: "0\.0\.0\.0"\)/s);
  });
});

/** helm from scripts/build-helm.sh (cached under ~/.cache/berth/bin), $BERTH_HELM, or none. */
const helm = [
  process.env.BERTH_HELM,
  join(process.env.BERTH_HOME ?? "", "bin", "helm-v3.22.0"),
  join(homedir(), ".cache", "berth", "bin", "helm-v3.22.0"),
].find((path): path is string => !!path && existsSync(path));

describe("berth install --helm", () => {
  it.skipIf(!helm)(
    "helm template equals berth install --dry-run, without and with gateway.apiKeysSecret",
    async () => {
      const chart = join(directory, "chart");
      const written = await runBerth(["install", "--helm", chart], env);
      expect(written.code, written.stderr).toBe(0);
      const key = (object: Json) => `${object.kind}/${object.metadata.name}`;
      // The chart has no Namespace (helm --create-namespace) and no version label (it would pin the image).
      const comparable = (objects: Json[]) =>
        JSON.parse(
          JSON.stringify(objects.filter((object) => object.kind !== "Namespace")).replaceAll(
            /,?"app.kubernetes.io\/version":"[^"]*"/g,
            "",
          ),
        ).sort((a: Json, b: Json) => key(a).localeCompare(key(b)));
      for (const secret of ["", "berth-api-keys"]) {
        const args = ["template", "release", chart, "--namespace", "berth-system", "--include-crds"];
        if (secret) args.push("--set", `gateway.apiKeysSecret=${secret}`);
        const templated = await runProcess(helm as string, args, {});
        expect(templated.code, templated.stderr).toBe(0);
        const installed = await dryRun(secret ? ["--api-keys-secret", secret] : []);
        expect(comparable(documents(templated.stdout)), secret || "no secret").toEqual(comparable(installed));
      }
    },
  );
});
