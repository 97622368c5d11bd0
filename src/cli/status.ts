// `berth status`: the models a running `berth up` serves, desired vs actual replicas, and each
// replica's state, port, pid, in-flight requests, restarts and uptime.
import type { Command } from "commander";
import { adminCall } from "../control/admin-client.js";
import { type UpStatus, upStatusSchema } from "../control/admin-protocol.js";
import { formatUptime, table, withAdmin } from "./admin.js";
import { CliError, EXIT_USAGE } from "./errors.js";
import { followUntilStopped, parseIntervalSeconds } from "./follow.js";

export function register(program: Command): void {
  program
    .command("status")
    .description("models and replicas of the running berth up: desired vs actual, state, port, pid, load")
    .option("--json", "print the status as JSON (with --watch: one line of JSON each time)")
    .option("-w, --watch", "keep showing the status, refreshed every --interval seconds, until Ctrl-C")
    .option("--interval <seconds>", "refresh period of --watch", "1")
    .action(async (options: { json?: boolean; watch?: boolean; interval: string }) => {
      const read = () => withAdmin((socket) => adminCall(socket, upStatusSchema, "GET", "/v1/status"));
      if (!options.watch) {
        const status = await read();
        process.stdout.write(
          options.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status, Date.now()),
        );
        return;
      }
      const intervalMs = parseIntervalSeconds(options.interval);
      if (intervalMs === undefined)
        throw new CliError(`--interval must be 0.2..3600 seconds, not "${options.interval}"`, EXIT_USAGE);
      const tty = process.stdout.isTTY === true && !options.json;
      await followUntilStopped(async () => {
        const status = await read();
        if (options.json) process.stdout.write(`${JSON.stringify(status)}\n`);
        else if (tty) process.stdout.write(`\x1b[H\x1b[2J${formatStatus(status, Date.now())}`);
        else process.stdout.write(`${new Date().toISOString()}\n${formatStatus(status, Date.now())}\n`);
      }, intervalMs);
    });
}

export function formatStatus(status: UpStatus, now: number): string {
  const lines = [
    `gateway ${status.gatewayUrl}  (berth up pid ${status.pid}, up ${formatUptime(now - status.startedAt)}, ${status.runtime} runtime)`,
    `spec    ${status.specFile}`,
    "",
  ];
  const rows = [
    ["MODEL", "SERVED AS", "GEN", "DESIRED", "READY", "ACTUAL", "MIN..MAX", "FLOOR", "IN-FLIGHT", "NOTE"],
  ];
  for (const model of status.models) {
    const notes = [
      model.failure
        ? `FAILED (${model.failure.code})`
        : model.available === false
          ? "UNAVAILABLE (requests get 503 at once)"
          : "",
      model.autoscaling.enabled ? "" : "autoscaling off",
      model.autoscaling.panicking ? "panic" : "",
      model.rollout ? `rolling to gen ${model.rollout.toGeneration}` : "",
      model.autoscaling.lastDecision ? `autoscaler: ${model.autoscaling.lastDecision.reason}` : "",
    ].filter((note) => note.length > 0);
    rows.push([
      model.name,
      model.servedName,
      String(model.generation),
      String(model.desired),
      String(model.ready),
      String(model.actual),
      `${model.min}..${model.max}`,
      model.manualFloor === undefined ? "-" : String(model.manualFloor),
      String(model.inFlight),
      notes.join(", "),
    ]);
  }
  lines.push(table(rows), "");
  for (const model of status.models) {
    if (model.available === false)
      lines.push(
        `${model.name} cannot serve: ${model.unavailableReason ?? "no replica can become ready"}`,
        "",
      );
  }
  for (const model of status.models) {
    if (model.replicas.length === 0) {
      lines.push(`${model.name}: no replicas`, "");
      continue;
    }
    const replicaRows = [
      ["REPLICA", "STATE", "GEN", "PORT", "PID", "IN-FLIGHT", "RESTARTS", "UPTIME", "MESSAGE"],
    ];
    for (const replica of model.replicas) {
      replicaRows.push([
        replica.id,
        replica.state,
        String(replica.generation),
        replica.port === undefined ? "-" : String(replica.port),
        replica.pid === undefined ? "-" : String(replica.pid),
        String(replica.inFlight),
        String(replica.restarts),
        replica.uptimeMs > 0 ? formatUptime(replica.uptimeMs) : "-",
        replica.message ?? "",
      ]);
    }
    lines.push(table(replicaRows));
    for (const replica of model.replicas) {
      if (replica.lastLogLines && replica.lastLogLines.length > 0) {
        lines.push(`  ${replica.id} is crash-looping; its last log lines:`);
        for (const line of replica.lastLogLines) lines.push(`    ${line}`);
      }
    }
    lines.push("");
  }
  return `${lines.join("\n")}`;
}
