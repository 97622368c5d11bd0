// What the terminal view of `berth up` shows, gathered from the controller (replicas, events) and
// the gateway's metrics (requests/s per model, from two readings of berth_requests_total).
import type { Registry } from "prom-client";
import type { Controller } from "../control/controller.js";
import type { ViewSnapshot } from "./up-view.js";

export interface LiveSource {
  snapshot(): ViewSnapshot;
  stop(): void;
}

export function liveSource(options: {
  controller: Controller;
  metrics: Registry;
  gatewayUrl: string;
  prometheusUrl?: () => string | undefined;
  stopping: () => boolean;
  sampleMs?: number;
}): LiveSource {
  const { controller, metrics } = options;
  let previous: { at: number; totals: Map<string, number> } | undefined;
  let rates = new Map<string, number>();
  const sample = async (): Promise<void> => {
    const counter = metrics.getSingleMetric("berth_requests_total");
    if (!counter) return;
    const totals = new Map<string, number>();
    for (const value of (await counter.get()).values) {
      const model = String(value.labels.model ?? "");
      totals.set(model, (totals.get(model) ?? 0) + value.value);
    }
    const now = Date.now();
    if (previous && now > previous.at) {
      const next = new Map<string, number>();
      for (const [model, total] of totals)
        next.set(
          model,
          Math.max(0, (total - (previous.totals.get(model) ?? 0)) / ((now - previous.at) / 1000)),
        );
      rates = next;
    }
    previous = { at: now, totals };
  };
  const timer = setInterval(() => void sample().catch(() => undefined), options.sampleMs ?? 2000);
  timer.unref();
  void sample();
  return {
    snapshot() {
      const events = controller.events();
      const last = events.at(-1);
      return {
        gatewayUrl: options.gatewayUrl,
        prometheusUrl: options.prometheusUrl?.(),
        stopping: options.stopping(),
        models: controller.status().models.map((model) => ({
          name: model.servedName,
          ready: model.ready,
          desired: model.desired,
          inFlight: model.inFlight,
          requestsPerSecond: rates.get(model.servedName) ?? 0,
          ...(model.unavailableReason === undefined ? {} : { unavailableReason: model.unavailableReason }),
        })),
        ...(last
          ? { lastEvent: { at: last.at, model: last.model, type: last.type, message: last.message } }
          : {}),
      };
    },
    stop() {
      clearInterval(timer);
    },
  };
}
