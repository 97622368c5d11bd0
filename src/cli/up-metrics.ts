// Metrics `berth up` adds to its gateway's /metrics from the controller: desired replicas per model
// and a counter of controller events by type (autoscaler decisions, restarts, crash loops), read
// at scrape time so nothing runs between scrapes.
import { Counter, Gauge, type Registry } from "prom-client";
import type { Controller, ControllerEventType } from "../control/controller.js";

// Every type starts at 0 per model, so `increase()` sees the first event and alerts have series.
// A record over the union: a new event type fails to compile until it is listed here.
const EVENT_TYPE_LIST: Record<ControllerEventType, true> = {
  autoscale: true,
  "scale-manual": true,
  apply: true,
  "rollout-started": true,
  "rollout-finished": true,
  "replica-starting": true,
  "replica-ready": true,
  "replica-restarting": true,
  "replica-crash-looping": true,
  "replica-unresponsive": true,
  "replica-draining": true,
  "replica-stopped": true,
  "model-failed": true,
};
const EVENT_TYPES = Object.keys(EVENT_TYPE_LIST) as ControllerEventType[];

export function registerControllerMetrics(controller: Controller, registry: Registry): void {
  new Gauge({
    name: "berth_autoscaler_desired_replicas",
    help: "Replicas the autoscaler (with the spec and any manual floor) wants per model.",
    labelNames: ["model"],
    registers: [registry],
    collect() {
      this.reset();
      for (const model of controller.status().models) this.set({ model: model.servedName }, model.desired);
    },
  });
  let lastSeq = 0;
  const seenModels = new Set<string>();
  new Counter({
    name: "berth_controller_events_total",
    help: "Controller events by model and type: autoscale decisions, replica restarts, crash loops, rollouts.",
    labelNames: ["model", "type"],
    registers: [registry],
    collect() {
      const served = new Map(controller.status().models.map((model) => [model.name, model.servedName]));
      for (const servedName of served.values()) {
        if (seenModels.has(servedName)) continue;
        seenModels.add(servedName);
        for (const type of EVENT_TYPES) this.inc({ model: servedName, type }, 0);
      }
      // The controller keeps the last 1000 events: more than that between two scrapes go uncounted.
      for (const event of controller.events()) {
        if (event.seq <= lastSeq) continue;
        lastSeq = event.seq;
        this.inc({ model: served.get(event.model) ?? event.model, type: event.type });
      }
    },
  });
}
