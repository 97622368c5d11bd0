// `berth up` pulls every model's source through the store before replicas start: once per source
// (not per replica), with progress; a model whose source cannot be had is marked failed (status,
// events, 503 from the gateway) while the others serve. Sources come from a real S3-compatible
// server (s3proxy) behind a relay that records each request.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { type CuttingRelay, startCuttingRelay } from "../support/cutting-relay.js";
import { type S3TestServer, startS3Server } from "../support/s3-server.js";
import { type BerthUp, startBerthUp } from "./harness.js";

function model(name: string, source: string, replicas: string): string {
  return `---
apiVersion: berth.dev/v1alpha1
kind: ModelDeployment
metadata:
  name: ${name}
spec:
  model:
    source: ${source}
    contextSize: 256
  engine:
    parallel: 2
    threads: 1
  replicas: ${replicas}
  autoscaling: { enabled: false }
  resources: { cpu: "1", memory: 1Gi }
`;
}

describe("berth up resolves model sources through the store", () => {
  let server: S3TestServer;
  let relay: CuttingRelay;
  let up: BerthUp | undefined;
  let env: NodeJS.ProcessEnv;
  // A key of its own per run: the suite's model cache is shared between runs.
  const key = `tiny/${randomUUID()}.gguf`;

  beforeAll(async () => {
    server = await startS3Server();
    relay = await startCuttingRelay(Number(new URL(server.endpoint).port));
    await server.put(key, readFileSync(await ensureTinyModel({ shape: "tiny", dtype: "q8_0" })));
    env = {
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
      AWS_ENDPOINT_URL: relay.url,
      AWS_REGION: "us-east-1",
      AWS_CONFIG_FILE: "/nonexistent/aws-config",
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
    };
  });

  afterAll(async () => {
    await up?.cleanup();
    await relay?.close();
    await server?.close();
  });

  it("pulls once per source for all replicas and models; a failed pull fails that model only", async () => {
    const spec = [
      model("good", `s3://models/${key}`, "{ min: 2, max: 2 }"),
      model("same-source", `s3://models/${key}`, "{ min: 1, max: 1 }"),
      model("broken", "s3://models/tiny/missing.gguf", "{ min: 1, max: 1 }"),
    ].join("");
    up = await startBerthUp(spec, [], env);
    const status = await up.waitForStatus(
      "good and same-source ready, broken failed",
      (current) =>
        current.models.find((m) => m.name === "good")?.ready === 2 &&
        current.models.find((m) => m.name === "same-source")?.ready === 1,
    );
    // One GET of the object for three replicas of two models.
    expect(relay.requests.filter((request) => request.method === "GET")).toHaveLength(1);
    expect(up.stderr()).toContain(`pull s3://models/${key}`);

    const broken = status.models.find((m) => m.name === "broken");
    expect(broken).toMatchObject({ desired: 0, actual: 0, available: false });
    expect(broken?.failure?.code).toBe("BERTH_MODEL_SOURCE_NOT_FOUND");
    expect(broken?.failure?.message).toContain('no object "tiny/missing.gguf" in bucket "models"');

    const text = await up.berth(["status"]);
    expect(text.stdout).toContain("FAILED (BERTH_MODEL_SOURCE_NOT_FOUND)");
    const events = await up.berth(["events", "--model", "broken", "--json"]);
    const parsed = JSON.parse(events.stdout) as Array<{ type: string; message: string }>;
    expect(parsed.find((event) => event.type === "model-failed")?.message).toContain("tiny/missing.gguf");

    const failed = await fetch(`${up.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "broken", prompt: "Hello", max_tokens: 2 }),
    });
    expect(failed.status).toBe(503);
    expect(JSON.stringify(await failed.json())).toContain("tiny/missing.gguf");
    const served = await fetch(`${up.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "good", prompt: "Hello", max_tokens: 2 }),
    });
    expect(served.status).toBe(200);
    expect(await up.stop()).toBe(0);
  });

  it("exits 1 naming the source when no model of the spec can be had", async () => {
    const spec = model("broken", "s3://models/tiny/missing.gguf", "{ min: 1, max: 1 }");
    const started = startBerthUp(spec, [], env);
    await expect(started).rejects.toThrow(/exited 1[\s\S]*tiny\/missing\.gguf/);
  });
});
