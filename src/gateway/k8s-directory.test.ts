// EndpointSlice reading, as tables: an endpoint's conditions → what the gateway does with it, and
// the gateway pods the autoscale loop finds in its Service's slices. (The directory itself runs
// against a real API server in test/k8s/gateway.test.ts.)
import { describe, expect, it } from "vitest";
import { gatewayEndpoints } from "../operator/gateway-load.js";
import type { LiveObject } from "../operator/informer.js";
import { endpointState } from "./k8s-directory.js";

describe("endpointState", () => {
  it.each([
    [{ ready: true, serving: true, terminating: false }, "ready"],
    // The API says consumers read a missing ready as ready.
    [{}, "ready"],
    [undefined, "ready"],
    [{ ready: false, serving: false, terminating: false }, "starting"],
    // A pod shutting down: still serving its in-flight requests, gets no new ones.
    [{ ready: false, serving: true, terminating: true }, "draining"],
    [{ ready: false, serving: false, terminating: true }, "draining"],
  ] as const)("%j → %s", (conditions, state) => {
    expect(endpointState(conditions)).toBe(state);
  });
});

describe("gatewayEndpoints", () => {
  const slice = (ports: unknown, endpoints: unknown): LiveObject =>
    ({
      metadata: { name: "s", namespace: "berth-system", uid: "u", resourceVersion: "1" },
      ports,
      endpoints,
    }) as LiveObject;

  it("lists every endpoint with an address on the http port, once, draining ones included", () => {
    const endpoints = gatewayEndpoints([
      slice(
        [
          { name: "metrics", port: 9100 },
          { name: "http", port: 8080 },
        ],
        [
          { addresses: ["10.0.0.1"], conditions: { ready: true }, targetRef: { name: "gw-a" } },
          {
            addresses: ["10.0.0.2"],
            conditions: { ready: false, terminating: true },
            targetRef: { name: "gw-b" },
          },
          { addresses: [] },
        ],
      ),
      // The same pod in a second slice while it moves between them.
      slice([{ name: "http", port: 8080 }], [{ addresses: ["10.0.0.1"], targetRef: { name: "gw-a" } }]),
      slice(undefined, [{ addresses: ["10.0.0.9"] }]),
    ]);
    expect(endpoints).toEqual([
      { address: "10.0.0.1", port: 8080, pod: "gw-a" },
      { address: "10.0.0.2", port: 8080, pod: "gw-b" },
    ]);
  });
});
