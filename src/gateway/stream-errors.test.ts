// How the gateway ends what it cannot finish, as the replica would: a deadline or a replica that
// dies mid-stream ends the stream with an SSE error event (never a cut connection), and a request
// that arrives while the gateway closes gets 503 in OpenAI's shape with Retry-After. Fake replicas
// here only inject the faults (an endless stream, a replica that dies mid-stream, a slow answer).
import { Client, request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import {
  captureLogger,
  type FakeHandler,
  MemoryDirectory,
  startFakeUpstream,
  upstream,
  waitUntil,
} from "../../test/gateway/fixtures.js";
import { deadlineMessage, HttpError, errorBody as replicaErrorBody } from "../server/errors.js";
import { buildGateway, type Gateway } from "./app.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(
  handler: FakeHandler,
  requestTimeoutMs?: number,
): Promise<{ gateway: Gateway; url: string }> {
  const fake = await startFakeUpstream(handler);
  cleanups.push(() => fake.close());
  const gateway = await buildGateway({
    directory: new MemoryDirectory().addModel("m", { upstreams: [upstream("r1", fake.url)] }),
    logger: captureLogger().logger,
    port: 0,
    dashboard: false,
    shutdownGraceMs: 5_000,
    ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
  });
  const url = await gateway.listen();
  // A test may have closed it already (closing is what it tests).
  cleanups.push(() => gateway.close().catch(() => undefined));
  return { gateway, url };
}

const endlessStream: FakeHandler = (req, res) => {
  if (req.url === "/healthz") return void res.end("ok");
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.write('data: {"t":1}\n\n');
  const timer = setInterval(() => res.write('data: {"t":1}\n\n'), 20);
  res.once("close", () => clearInterval(timer));
};

async function streamText(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const response = await request(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "m", prompt: "hi", stream: true }),
  });
  // A cut connection would reject here instead of resolving with the text.
  return { status: response.statusCode, text: await response.body.text() };
}

function lastEvent(text: string): unknown {
  const events = text.split("\n\n").filter((event) => event.startsWith("data: "));
  return JSON.parse(events.at(-1)!.slice("data: ".length));
}

describe("a stream the gateway cannot finish", () => {
  it("ends at the deadline with the replica's own SSE error event", async () => {
    const { url } = await setup(endlessStream);
    const answer = await streamText(url, { "x-berth-timeout-ms": "300" });
    expect(answer.status).toBe(200);
    // Exactly what a replica writes when its deadline ends a stream (src/server/openai-routes.ts).
    expect(lastEvent(answer.text)).toEqual(
      replicaErrorBody(new HttpError("BERTH_DEADLINE_EXCEEDED", deadlineMessage(300))),
    );
  });

  it("ends with an error event when the replica dies mid-stream", async () => {
    const { url } = await setup((req, res) => {
      if (req.url === "/healthz") return void res.end("ok");
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write('data: {"t":1}\n\n', () => setTimeout(() => res.socket?.destroy(), 20));
    });
    const answer = await streamText(url);
    expect(answer.text.startsWith('data: {"t":1}\n\n')).toBe(true);
    expect(lastEvent(answer.text)).toMatchObject({
      error: { code: "BERTH_UPSTREAM_UNAVAILABLE", type: "server_error" },
    });
  });
});

describe("closing", () => {
  it("answers a request that arrives while closing with 503, Retry-After and OpenAI's error shape", async () => {
    let release: (() => void) | undefined;
    const { gateway, url } = await setup((req, res) => {
      if (req.url === "/healthz") return void res.end("ok");
      release = () => res.end(JSON.stringify({ choices: [{ text: "late" }] }));
    });
    // One connection, two pipelined requests: the second reaches the gateway after close began.
    const client = new Client(url, { pipelining: 2 });
    cleanups.push(() => client.close());
    const send = () =>
      client.request({
        method: "POST",
        path: "/v1/completions",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", prompt: "hi" }),
      });
    const first = send();
    await waitUntil(() => release !== undefined, "the first request at the replica");
    const closed = gateway.close();
    const second = send();
    await new Promise((resolve) => setImmediate(resolve));
    release!();
    const [firstAnswer, secondAnswer] = await Promise.all([first, second]);
    expect(firstAnswer.statusCode).toBe(200);
    await firstAnswer.body.text();
    expect(secondAnswer.statusCode).toBe(503);
    expect(secondAnswer.headers["retry-after"]).toMatch(/^\d+$/);
    expect(await secondAnswer.body.json()).toEqual({
      error: {
        message: "the gateway is shutting down",
        type: "server_error",
        param: null,
        code: "BERTH_GATEWAY_DRAINING",
      },
    });
    await closed;
  });
});
