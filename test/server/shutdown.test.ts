// Acceptance 6: SIGTERM while 4 requests are in flight — readiness goes false, a new request is
// refused, all 4 complete with 200 and their full length, and the process exits 0.

import { request as httpRequest } from "node:http";
import { afterAll, expect, it } from "vitest";
import { ensureTinyModel } from "../../src/models/tiny.js";
import { metricValue, type ServeProcess, startServe, waitFor } from "../support/serve-process.js";

const MODEL = "tiny";
let server: ServeProcess | undefined;

afterAll(() => server?.kill());

/** A request on a fresh connection: its status, or the connection error's code (ECONNREFUSED). */
function freshRequest(url: string, path: string, method: string, body?: string): Promise<number | string> {
  return new Promise((resolve) => {
    const target = new URL(path, url);
    const request = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method,
        agent: false,
        headers: { "content-type": "application/json" },
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    request.end(body);
  });
}

it("drains in-flight requests on SIGTERM, refuses new ones and exits 0", async () => {
  const modelPath = await ensureTinyModel({ shape: "tiny", dtype: "f16" });
  server = await startServe([
    "--model",
    modelPath,
    "--model-id",
    MODEL,
    "--parallel",
    "4",
    "--grace-period",
    "10m",
  ]);
  const { url } = server;
  const maxTokens = 48;
  const inFlight = Array.from({ length: 4 }, (_, index) =>
    fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        prompt: `Request ${index}`,
        max_tokens: maxTokens,
        ignore_eos: true,
      }),
    }).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as { usage?: { completion_tokens: number } },
    })),
  );
  await waitFor(
    async () => (await metricValue(url, `berth_requests_running{model="${MODEL}"}`)) === 4,
    "all 4 requests to be generating",
  );

  server.child.kill("SIGTERM");
  await waitFor(async () => {
    const readiness = await freshRequest(url, "/readyz", "GET");
    return readiness === 503 || readiness === "ECONNREFUSED";
  }, "readiness to go false");
  const refused = await freshRequest(
    url,
    "/v1/completions",
    "POST",
    JSON.stringify({ model: MODEL, prompt: "late", max_tokens: 2 }),
  );
  expect([503, "ECONNREFUSED"]).toContain(refused);

  const results = await Promise.all(inFlight);
  for (const result of results) {
    expect(result.status).toBe(200);
    expect(result.body.usage?.completion_tokens).toBe(maxTokens);
  }
  expect(await server.exited).toBe(0);
  const draining = server.logLines.find((line) => line.msg === "draining");
  // They were really in flight when the signal came: the drain saw all 4.
  expect(draining?.inFlight).toBe(4);
});
