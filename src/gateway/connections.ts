// Graceful close of the gateway's client connections. HTTP/1.1 keep-alive has a race that no server
// can fully remove: a client may send a request on an idle connection at the moment the server
// closes it, and that request is lost with a reset (it may even sit unread in the socket's buffer,
// which Node still counts as idle). Node's `server.close()` closes every idle connection at once, so
// every client between two requests hits that race on a shutdown. Here, instead: stop accepting new
// connections (clients see a clean refusal), answer every request that still arrives with
// `Connection: close`, and close a connection only after it has been idle for a linger, so a client
// that is using its connection always gets an answer. Answers already under way keep their
// connection open: a client may have pipelined its next request behind them, which then still gets
// its (draining) answer. Only a client idle for the whole linger that
// sends at its very end can still meet the race.
import type { Server, ServerResponse } from "node:http";
import { Server as NetServer, type Socket } from "node:net";

/** How long a connection may stay idle once the gateway is closing. */
export const DEFAULT_IDLE_LINGER_MS = 1_000;

export interface ConnectionDrain {
  /** Stops accepting; resolves once every connection is closed (by its client, after its last answer, or idle). */
  drain(idleLingerMs?: number): Promise<void>;
  /** Whether this response's connection should be closed after it (the gateway is draining). */
  readonly draining: boolean;
  /** Open client connections and those of them with a request in progress (for tests and logs). */
  counts(): { open: number; busy: number };
}

export function trackConnections(server: Server): ConnectionDrain {
  // Requests in progress per connection: a connection with none is idle.
  const inProgress = new Map<Socket, number>();
  let lingerMs: number | undefined;
  let listenerClosed = false;
  let onAllClosed: (() => void) | undefined;
  const settleIfDone = () => {
    if (listenerClosed && inProgress.size === 0) onAllClosed?.();
  };

  const retireWhenIdle = (socket: Socket) => {
    if (lingerMs === undefined || inProgress.get(socket) !== 0) return;
    const timer = setTimeout(() => {
      if (inProgress.get(socket) === 0) socket.destroy();
    }, lingerMs);
    socket.once("close", () => clearTimeout(timer));
  };

  server.on("connection", (socket: Socket) => {
    inProgress.set(socket, 0);
    socket.once("close", () => {
      inProgress.delete(socket);
      settleIfDone();
    });
  });
  // First in line, so a request that arrives while draining is marked before its handler answers.
  server.prependListener("request", (request: { socket: Socket }, response: ServerResponse) => {
    const socket = request.socket;
    inProgress.set(socket, (inProgress.get(socket) ?? 0) + 1);
    if (lingerMs !== undefined && !response.headersSent) response.setHeader("connection", "close");
    response.once("close", () => {
      const left = inProgress.get(socket);
      if (left === undefined) return;
      inProgress.set(socket, left - 1);
      retireWhenIdle(socket);
    });
  });

  return {
    get draining() {
      return lingerMs !== undefined;
    },
    counts() {
      let busy = 0;
      for (const requests of inProgress.values()) if (requests > 0) busy += 1;
      return { open: inProgress.size, busy };
    },
    drain(idleLingerMs = DEFAULT_IDLE_LINGER_MS) {
      lingerMs = idleLingerMs;
      return new Promise<void>((resolve) => {
        onAllClosed = resolve;
        // net.Server's close, not http.Server's: the latter also closes every idle connection at once,
        // which is the race described above.
        NetServer.prototype.close.call(server, () => {
          listenerClosed = true;
          settleIfDone();
        });
        for (const socket of inProgress.keys()) retireWhenIdle(socket);
      });
    },
  };
}
