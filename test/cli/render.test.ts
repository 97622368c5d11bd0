// `berth render`: YAML and JSON output, options, bad input, and the Helm chart checked with a real
// `helm template` (helm built by scripts/build-helm.sh; the chart test is skipped without it).
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

const run = promisify(execFile);
const BERTH = join(process.cwd(), "bin", "berth.js");

async function exec(
  command: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(command, args, { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
const berth = (args: string[]) => exec(process.execPath, [BERTH, ...args]);

// biome-ignore lint/suspicious/noExplicitAny: tests walk rendered objects freely
type Json = Record<string, any>;

function documents(text: string): Array<Json> {
  return parseAllDocuments(text)
    .map((document) => document.toJS())
    .filter((value) => value !== null);
}

const MULTI = `apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: small }
spec:
  model: { source: tiny://tiny }
  replicas: { min: 1, max: 3 }
  kubernetes: { serviceMonitor: true, namespace: models }
---
apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata: { name: big, annotations: { note: "uses {{ braces }}" } }
spec:
  model: { source: hf://org/repo/big.gguf }
  resources: { cpu: "4", memory: 16Gi, gpu: 2 }
  replicas: { min: 2, max: 2 }
  ingress: { host: big.example.com, tlsSecretName: big-tls }
`;

function specFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-render-"));
  const file = join(dir, "berth.yaml");
  writeFileSync(file, text);
  return file;
}

describe("berth render", () => {
  it("prints the seed's objects as multi-document YAML", async () => {
    const result = await berth(["render", "-f", "examples/seed-gpt2/berth.yaml"]);
    expect(result.code, result.stderr).toBe(0);
    const objects = documents(result.stdout);
    expect(objects.map((object) => `${object.kind}/${object.metadata.name}`)).toEqual([
      "ServiceAccount/gpt2",
      "ConfigMap/gpt2",
      "Service/gpt2",
      "Deployment/gpt2",
      "PodDisruptionBudget/gpt2",
      "NetworkPolicy/gpt2",
      "Ingress/gpt2",
    ]);
  });

  it("prints a v1 List with --format json, with --image and --namespace applied", async () => {
    const result = await berth([
      "render",
      "-f",
      "examples/seed-gpt2/berth.yaml",
      "--format",
      "json",
      "--image",
      "localhost/berth:dev",
      "-n",
      "serving",
    ]);
    expect(result.code, result.stderr).toBe(0);
    const list = JSON.parse(result.stdout);
    expect(list).toMatchObject({ apiVersion: "v1", kind: "List" });
    const deployment = list.items.find((item: { kind: string }) => item.kind === "Deployment");
    expect(deployment.spec.template.spec.containers[0].image).toBe("localhost/berth:dev");
    expect(
      list.items.every((item: { metadata: { namespace: string } }) => item.metadata.namespace === "serving"),
    ).toBe(true);
  });

  it("renders every model of a multi-document spec", async () => {
    const result = await berth(["render", "-f", specFile(MULTI)]);
    expect(result.code, result.stderr).toBe(0);
    const kinds = documents(result.stdout).map((object) => `${object.kind}/${object.metadata.name}`);
    expect(kinds).toContain("HorizontalPodAutoscaler/small");
    expect(kinds).toContain("ServiceMonitor/small");
    expect(kinds).toContain("Ingress/big");
    expect(kinds).not.toContain("HorizontalPodAutoscaler/big");
  });

  it("rejects an invalid spec with exit 2 and bad flags with a message", async () => {
    const invalid = await berth(["render", "-f", specFile(MULTI.replace("max: 3", "max: 0"))]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain("spec.replicas.max");
    expect(invalid.stdout).toBe("");
    const format = await berth(["render", "-f", "examples/seed-gpt2/berth.yaml", "--format", "toml"]);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain("--format must be yaml or json");
  });
});

/** helm from scripts/build-helm.sh (cached under ~/.cache/berth/bin), $BERTH_HELM, or none. */
function findHelm(): string | undefined {
  const candidates = [
    process.env.BERTH_HELM,
    join(process.env.BERTH_HOME ?? "", "bin", "helm-v3.22.0"),
    join(homedir(), ".cache", "berth", "bin", "helm-v3.22.0"),
  ];
  return candidates.find((path): path is string => !!path && existsSync(path));
}
const helm = findHelm();
if (!helm)
  console.warn(
    "berth render --helm: `helm template` comparison skipped: run scripts/build-helm.sh (needs Go)",
  );

describe("berth render --helm", () => {
  it("writes a chart: Chart.yaml, values.yaml, one template per object", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-chart-"));
    const result = await berth(["render", "-f", "examples/seed-gpt2/berth.yaml", "--helm", dir]);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(join(dir, "Chart.yaml"), "utf8")).toContain("name: gpt2");
    const values = readFileSync(join(dir, "values.yaml"), "utf8");
    expect(values).toContain("replicas: 2");
    expect(values).toContain("host: gpt2.example.com");
    expect(readFileSync(join(dir, "templates", "gpt2-deployment.yaml"), "utf8")).toContain(
      "replicas: {{ $m.replicas }}",
    );
  });

  it.skipIf(!helm).each([
    ["the seed example", "examples/seed-gpt2/berth.yaml"],
    ["a multi-model spec with HPA, ServiceMonitor, TLS and literal braces", ""],
  ])("helm template of the chart equals berth render: %s", async (_what, path) => {
    const file = path || specFile(MULTI.replace("namespace: models", "networkPolicy: true"));
    const dir = mkdtempSync(join(tmpdir(), "berth-chart-"));
    const written = await berth(["render", "-f", file, "--helm", dir]);
    expect(written.code, written.stderr).toBe(0);
    const rendered = await berth(["render", "-f", file]);
    const templated = await exec(helm as string, ["template", "release", dir]);
    expect(templated.code, templated.stderr).toBe(0);
    const key = (object: Json) => `${object.kind}/${object.metadata.name}`;
    const sortByKey = (objects: Array<Json>) => objects.sort((a, b) => key(a).localeCompare(key(b)));
    const fromHelm = sortByKey(documents(templated.stdout));
    const fromBerth = sortByKey(documents(rendered.stdout));
    expect(fromHelm.length).toBeGreaterThan(5);
    expect(fromHelm).toEqual(fromBerth);

    // Values really drive the chart.
    const name = fromBerth.find((object) => object.kind === "Deployment")?.metadata.name;
    const overridden = await exec(helm as string, [
      "template",
      "release",
      dir,
      "--set",
      `models.${name}.image=localhost/other:1`,
      "--set",
      `models.${name}.service.port=8080`,
    ]);
    expect(overridden.code, overridden.stderr).toBe(0);
    const objects = documents(overridden.stdout).filter((object) => object.metadata.name === name);
    const deployment = objects.find((object) => object.kind === "Deployment");
    expect(deployment?.spec.template.spec.containers[0].image).toBe("localhost/other:1");
    expect(objects.find((object) => object.kind === "Service")?.spec.ports[0].port).toBe(8080);
  });
});
