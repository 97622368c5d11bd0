import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const BERTH = join(process.cwd(), "bin", "berth.js");

async function berth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BERTH, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe("berth validate", () => {
  it("accepts the shipped examples", async () => {
    for (const file of ["examples/local/berth.yaml", "examples/seed-gpt2/berth.yaml"]) {
      const result = await berth(["validate", "-f", file]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain("is valid");
    }
  });

  it("prints file, line and field on stderr and exits 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-validate-"));
    const file = join(dir, "berth.yaml");
    writeFileSync(
      file,
      "apiVersion: berth.dev/v1alpha1\nkind: ModelDeployment\nmetadata:\n  name: m\nspec:\n  model:\n    source: tiny://tiny\n  replicas:\n    min: 3\n    max: 2\n",
    );
    const result = await berth(["validate", "-f", file]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(`${file}:10 spec.replicas.max: must be ≥ spec.replicas.min (3)`);
  });

  it("names a missing file", async () => {
    const result = await berth(["validate", "-f", "/nonexistent/berth.yaml"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("/nonexistent/berth.yaml: no such file");
  });
});
