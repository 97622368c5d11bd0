// What `berth up` lends the gateway's web console: desired replicas per served model, the
// controller's events and the tail of a replica's log file (the runtime's logs, not followed).
import type { Controller } from "../control/controller.js";
import type { ConsoleLogLine, ConsoleSource } from "../gateway/console.js";
import type { Runtime } from "../runtime/types.js";

export function upConsoleSource(controller: Controller, runtime: Runtime): ConsoleSource {
  return {
    desiredReplicas() {
      return Object.fromEntries(controller.status().models.map((model) => [model.servedName, model.desired]));
    },
    events() {
      return controller.events();
    },
    async logTail(model, options) {
      const name = controller.modelName(model);
      if (name === undefined) return undefined;
      const lines: ConsoleLogLine[] = [];
      for await (const entry of runtime.logs(name, { tailLines: options.lines })) {
        if (options.replica === undefined || entry.replicaId === options.replica)
          lines.push({ replica: entry.replicaId, line: entry.line });
      }
      return lines;
    },
  };
}
