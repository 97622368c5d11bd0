// `berth status` text: a model that cannot serve says so, and why, under the model table.
import { describe, expect, it } from "vitest";
import type { UpStatus } from "../control/admin-protocol.js";
import { formatStatus } from "./status.js";

const REASON =
  'every replica of model "tiny" is crash-looping (tiny-a1b2c3 exited with code 2; restart 5 in 8000 ms; its last log line: berth: /m.gguf: no such file)';

function statusWith(available: boolean): UpStatus {
  return {
    pid: 4242,
    startedAt: 0,
    gatewayUrl: "http://127.0.0.1:8080",
    specFile: "/srv/berth.yaml",
    runtime: "local",
    models: [
      {
        name: "tiny",
        servedName: "tiny",
        generation: 1,
        desired: 1,
        ready: 0,
        actual: 1,
        min: 1,
        max: 1,
        autoscaling: { enabled: false, panicking: false },
        inFlight: 0,
        available,
        ...(available ? {} : { unavailableReason: REASON }),
        replicas: [
          {
            id: "tiny-a1b2c3",
            generation: 1,
            state: available ? "unresponsive" : "crash-looping",
            inFlight: 0,
            restarts: 5,
            uptimeMs: 0,
            message: "exited with code 2; restart 5 in 8000 ms",
          },
        ],
      },
    ],
  };
}

describe("formatStatus", () => {
  it("marks a model that cannot serve and says why", () => {
    const text = formatStatus(statusWith(false), 60_000);
    expect(text).toContain("UNAVAILABLE");
    expect(text).toContain(`tiny cannot serve: ${REASON}`);
    expect(text).toContain("crash-looping");
  });

  it("says nothing of the kind for a model that can, and shows an unresponsive replica's state", () => {
    const text = formatStatus(statusWith(true), 60_000);
    expect(text).not.toContain("UNAVAILABLE");
    expect(text).not.toContain("cannot serve");
    expect(text).toContain("unresponsive");
  });
});
