import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { trackConnections } from "./connections.js";

const servers: Server[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) await client.destroy();
  for (const server of servers.splice(0)) server.closeAllConnections();
});

/** A server that answers each request with its connection header as the server will send it. */
async function startServer() {
  const server = createServer((_request, response) => {
    response.end("answered");
  });
  servers.push(server);
  const drain = trackConnections(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, drain, url };
}

/** One keep-alive connection, so every request goes over the same socket. */
function keepAliveClient(url: string): Client {
  const client = new Client(url, { pipelining: 1, keepAliveTimeout: 60_000 });
  clients.push(client);
  return client;
}

describe("connection drain on close", () => {
  it("answers a request sent on an idle keep-alive connection at the moment the drain starts", async () => {
    const { server, drain, url } = await startServer();
    const client = keepAliveClient(url);
    const first = await client.request({ path: "/", method: "POST", body: "one" });
    expect(first.headers.connection).toBe("keep-alive");
    await first.body.text();
    expect(drain.counts()).toEqual({ open: 1, busy: 0 });

    // http.Server's own close() destroys this idle connection at once; the request on it would be lost.
    const drained = drain.drain(60_000);
    const second = await client.request({ path: "/", method: "POST", body: "two" });
    expect(await second.body.text()).toBe("answered");
    expect(second.headers.connection).toBe("close");
    await drained;
    expect(server.listening).toBe(false);
    expect(drain.counts()).toEqual({ open: 0, busy: 0 });
  });

  it("refuses new connections once draining, and closes a connection left idle after the linger", async () => {
    const { drain, url } = await startServer();
    const idle = keepAliveClient(url);
    await (await idle.request({ path: "/", method: "GET" })).body.text();

    const drained = drain.drain(50);
    expect(drain.draining).toBe(true);
    const fresh = keepAliveClient(url);
    await expect(fresh.request({ path: "/", method: "GET" })).rejects.toMatchObject({ code: "ECONNREFUSED" });
    // The idle connection is closed by the server after the linger; the drain then completes.
    await drained;
    expect(drain.counts().open).toBe(0);
  });

  it("lets an answer in progress finish, then closes its connection", async () => {
    let release: () => void = () => {};
    const server = createServer((_request, response) => {
      response.write("part one, ");
      release = () => response.end("part two");
    });
    servers.push(server);
    const drain = trackConnections(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = keepAliveClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const response = await client.request({ path: "/", method: "GET" });
    expect(drain.counts()).toEqual({ open: 1, busy: 1 });

    let done = false;
    const drained = drain.drain(0).then(() => {
      done = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    release();
    expect(await response.body.text()).toBe("part one, part two");
    await drained;
    expect(drain.counts().open).toBe(0);
  });
});
