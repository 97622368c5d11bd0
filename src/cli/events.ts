// `berth events`: what the running `berth up` decided and saw — autoscaler decisions with their
// inputs, replica starts, restarts and crash loops, rollouts, drains.
import type { Command } from "commander";
import { adminCall } from "../control/admin-client.js";
import { type ControllerEventView, eventsResponseSchema } from "../control/admin-protocol.js";
import { withAdmin } from "./admin.js";
import { followUntilStopped } from "./follow.js";

export function register(program: Command): void {
  program
    .command("events")
    .description("recent events of the running berth up (autoscaling decisions, restarts, rollouts)")
    .option("-m, --model <model>", "only this model's events")
    .option("--json", "print the events as JSON (with each decision's inputs; with -f one line each)")
    .option("-f, --follow", "keep printing new events until Ctrl-C")
    .action(async (options: { model?: string; json?: boolean; follow?: boolean }) => {
      const query = options.model === undefined ? "" : `?model=${encodeURIComponent(options.model)}`;
      const read = async () =>
        (await withAdmin((socket) => adminCall(socket, eventsResponseSchema, "GET", `/v1/events${query}`)))
          .events;
      if (!options.follow) {
        const events = await read();
        if (options.json) {
          process.stdout.write(`${JSON.stringify(events, null, 2)}\n`);
          return;
        }
        process.stdout.write(events.map(formatEvent).join(""));
        return;
      }
      // The controller numbers its events: print each one once, in order, as it appears.
      let lastSeq = 0;
      await followUntilStopped(async () => {
        const fresh = (await read()).filter((event) => event.seq > lastSeq);
        for (const event of fresh) {
          process.stdout.write(options.json ? `${JSON.stringify(event)}\n` : formatEvent(event));
          lastSeq = event.seq;
        }
      }, 500);
    });
}

export function formatEvent(event: ControllerEventView): string {
  const time = new Date(event.at).toISOString().slice(11, 23);
  return `${time}  ${event.model}  ${event.type.padEnd(21)}  ${event.message}\n`;
}
