// An injected fault, and only that: a TCP relay in front of a real HTTP server that cuts the
// connection of the first GET after a given number of response bytes, and records every request's
// method, path and Range header (so tests can see that a resumed download asked for the rest only).
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface RelayRequest {
  method: string;
  path: string;
  range?: string;
}

export interface CuttingRelay {
  port: number;
  url: string;
  requests: RelayRequest[];
  /** Response bytes (headers included) relayed back to clients, over all connections. */
  responseBytes(): number;
  /** Cut the next GET whose path contains `pathPart` after this many response bytes. */
  cutNextGet(pathPart: string, afterBytes: number): void;
  close(): Promise<void>;
}

export async function startCuttingRelay(targetPort: number): Promise<CuttingRelay> {
  const requests: RelayRequest[] = [];
  let relayed = 0;
  let pendingCut: { pathPart: string; afterBytes: number } | undefined;
  const sockets = new Set<Socket>();

  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    let cut: { afterBytes: number; seen: number } | undefined;
    let head = "";
    client.on("data", (data: Buffer) => {
      // Request heads are text; bodies (none on GET/HEAD) are passed through unread.
      head += data.toString("latin1");
      for (;;) {
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) break;
        const lines = head.slice(0, end).split("\r\n");
        head = head.slice(end + 4);
        const [method = "", path = ""] = (lines[0] ?? "").split(" ");
        if (!/^[A-Z]+$/.test(method)) continue;
        const range = lines.find((line) => /^range:/i.test(line))?.replace(/^range:\s*/i, "");
        requests.push({ method, path, ...(range === undefined ? {} : { range }) });
        if (method === "GET" && pendingCut && path.includes(pendingCut.pathPart)) {
          cut = { afterBytes: pendingCut.afterBytes, seen: 0 };
          pendingCut = undefined;
        }
      }
      upstream.write(data);
    });
    upstream.on("data", (data: Buffer) => {
      if (cut) {
        const room = cut.afterBytes - cut.seen;
        if (data.length >= room) {
          client.write(data.subarray(0, room));
          relayed += room;
          client.destroy();
          upstream.destroy();
          return;
        }
        cut.seen += data.length;
      }
      relayed += data.length;
      client.write(data);
    });
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", closeBoth);
    upstream.on("close", closeBoth);
    client.on("error", closeBoth);
    upstream.on("error", closeBoth);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    responseBytes: () => relayed,
    cutNextGet(pathPart, afterBytes) {
      pendingCut = { pathPart, afterBytes };
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
