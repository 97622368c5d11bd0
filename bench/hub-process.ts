// The hub-compatible test server in a process of its own, for bench:pull: serving must not share
// an event loop or a core with the client being measured. Prints {"url"} on stdout; stops on SIGTERM.
import { startHubServer } from "../test/support/hub-server.js";

const root = process.argv[2];
if (!root) {
  console.error("usage: hub-process ROOT");
  process.exit(2);
}
const hub = await startHubServer({ root, control: true });
process.stdout.write(`${JSON.stringify({ url: hub.url })}\n`);
process.on("SIGTERM", () => {
  hub.close().then(() => process.exit(0));
});
