// `berth events`: what the running `berth up` decided and saw — autoscaler decisions with their
// inputs, replica starts, restarts and crash loops, rollouts, drains.
import type { Command } from "commander";
import { adminCall } from "../control/admin-client.js";
import { type ControllerEventView, eventsResponseSchema } from "../control/admin-protocol.js";
import { withAdmin } from "./admin.js";

export function register(program: Command): void {
  program
    .command("events")
    .description("recent events of the running berth up (autoscaling decisions, restarts, rollouts)")
    .option("-m, --model <model>", "only this model's events")
    .option("--json", "print the events as JSON (with each decision's inputs)")
    .action(async (options: { model?: string; json?: boolean }) => {
      const query = options.model === undefined ? "" : `?model=${encodeURIComponent(options.model)}`;
      const { events } = await withAdmin((socket) =>
        adminCall(socket, eventsResponseSchema, "GET", `/v1/events${query}`),
      );
      if (options.json) {
        process.stdout.write(`${JSON.stringify(events, null, 2)}\n`);
        return;
      }
      process.stdout.write(events.map(formatEvent).join(""));
    });
}

export function formatEvent(event: ControllerEventView): string {
  const time = new Date(event.at).toISOString().slice(11, 23);
  return `${time}  ${event.model}  ${event.type.padEnd(21)}  ${event.message}\n`;
}
