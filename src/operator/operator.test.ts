// What `berth operator` answers on /readyz and /healthz and counts in its metrics, from the Operator
// itself over a fake API server: a standby is ready while the Lease answers, a leader once its
// informers have listed, and neither while the API server fails. (The real control plane: test/k8s.)
import { afterEach, describe, expect, it } from "vitest";
import type { KubeClient, KubeRequest, KubeResponse } from "../k8s/client.js";
import { K8sError } from "../k8s/errors.js";
import { microTime } from "./leader.js";
import { Operator } from "./operator.js";

const LEASE = "/apis/coordination.k8s.io/v1/namespaces/berth-system/leases";

/** An API server in memory: one Lease, lists that answer when `listsAnswer` resolves, idle watches. */
function fakeApiServer() {
  let openLists!: () => void;
  const state = {
    lease: undefined as Record<string, unknown> | undefined,
    unreachable: false,
    listsAnswer: new Promise<void>((resolve) => {
      openLists = resolve;
    }),
    modelDeployments: [] as unknown[],
    requests: [] as string[],
  };
  let version = 1;
  const client: KubeClient = {
    server: "https://fake",
    context: "fake",
    defaultNamespace: "default",
    requestCount: 0,
    async request<T>(request: KubeRequest): Promise<KubeResponse<T>> {
      state.requests.push(`${request.method} ${request.path}`);
      if (state.unreachable)
        throw new K8sError("BERTH_K8S_UNREACHABLE", "connect ECONNREFUSED 127.0.0.1:6443");
      const answer = (status: number, body: unknown) => ({ status, body: body as T });
      if (request.path.startsWith(LEASE)) {
        if (request.method === "GET") return state.lease ? answer(200, state.lease) : answer(404, {});
        const lease = request.body as { metadata: Record<string, unknown> };
        state.lease = { ...lease, metadata: { ...lease.metadata, resourceVersion: String(++version) } };
        return answer(200, state.lease);
      }
      if (request.method === "GET") {
        await state.listsAnswer;
        const items = request.path.includes("modeldeployments") ? state.modelDeployments : [];
        return answer(200, { metadata: { resourceVersion: String(version) }, items });
      }
      return answer(200, {}); // status patches, events
    },
    async watch(_path, _query, _onEvent, signal) {
      await new Promise((resolve) => signal?.addEventListener("abort", resolve, { once: true }));
      return true;
    },
    async close() {},
  };
  return { client, state, openLists: () => openLists() };
}

const heldBy = (holder: string) => ({
  apiVersion: "coordination.k8s.io/v1",
  kind: "Lease",
  metadata: { name: "berth-operator", namespace: "berth-system", resourceVersion: "1" },
  spec: { holderIdentity: holder, leaseDurationSeconds: 3600, renewTime: microTime(new Date()) },
});

const lease = {
  namespace: "berth-system",
  name: "berth-operator",
  durationMs: 1000,
  renewDeadlineMs: 500,
  retryPeriodMs: 10,
};

async function until<T>(read: () => T | Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function metric(operator: Operator, series: string): Promise<number | undefined> {
  const text = await operator.metrics.registry.metrics();
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const operators: Operator[] = [];
afterEach(async () => {
  await Promise.all(operators.splice(0).map((operator) => operator.stop()));
});

function startOperator(client: KubeClient, withLease: typeof lease | false = lease): Operator {
  const operator = new Operator({ client, identity: "op-me", lease: withLease, workers: 1 });
  operators.push(operator);
  return operator;
}

describe("operator readiness and metrics", () => {
  it("a standby is ready while another holds the Lease, and not while the API server fails", async () => {
    const api = fakeApiServer();
    api.state.lease = heldBy("op-other");
    const operator = startOperator(api.client);
    expect(operator.ready()).toEqual({ ok: false, detail: "not started" });
    await operator.start();
    const standing = await until(
      () => operator.ready(),
      (check) => check.ok,
      "the standby to be ready",
    );
    expect(standing.detail).toBe("standing by: Lease held by op-other");
    expect(operator.leading).toBe(false);
    expect(await metric(operator, "berth_operator_leader")).toBe(0);

    api.state.unreachable = true;
    const failing = await until(
      () => operator.ready(),
      (check) => !check.ok,
      "readiness to fail",
    );
    expect(failing.detail).toBe("leader election failing: connect ECONNREFUSED 127.0.0.1:6443");
    expect(operator.live()).toEqual({ ok: true, detail: "ok" });

    api.state.unreachable = false;
    await until(() => operator.ready().ok, Boolean, "readiness to come back");
  });

  it("a leader is not ready until its informers have listed; then counts its reconciles", async () => {
    const api = fakeApiServer();
    api.state.modelDeployments = [
      {
        apiVersion: "berth.dev/v1alpha1",
        kind: "ModelDeployment",
        metadata: { name: "bad", namespace: "ns", uid: "u1", resourceVersion: "1", generation: 1 },
        spec: { model: { source: "ftp://nowhere" } },
      },
    ];
    const operator = startOperator(api.client);
    await operator.start();
    await until(() => operator.leading, Boolean, "the operator to lead");
    expect(operator.ready()).toEqual({ ok: false, detail: "leading: informers not synced yet" });
    expect(await metric(operator, "berth_operator_leader")).toBe(1);

    api.openLists();
    const ready = await until(
      () => operator.ready(),
      (check) => check.ok,
      "the leader to be ready",
    );
    expect(ready.detail).toBe("leading: informers synced, 1 ModelDeployments");
    expect(await metric(operator, "berth_operator_resources")).toBe(1);
    // The invalid spec is reconciled once (status Degraded; nothing to retry): a success.
    const success = 'berth_operator_reconcile_total{result="success"}';
    await until(
      () => metric(operator, success),
      (count) => count === 1,
      "a successful reconcile",
    );
    expect(api.state.requests).toContain(
      "PATCH /apis/berth.dev/v1alpha1/namespaces/ns/modeldeployments/bad/status",
    );
    expect(await metric(operator, "berth_operator_reconcile_seconds_count")).toBe(1);
    expect(await metric(operator, 'berth_operator_reconcile_total{result="error"}')).toBe(0);
  });

  it("without leader election it is ready once synced, and says stopping while it stops", async () => {
    const api = fakeApiServer();
    api.openLists();
    const operator = startOperator(api.client, false);
    await operator.start();
    await until(() => operator.ready().ok, Boolean, "ready");
    expect(operator.ready().detail).toBe("leading: informers synced, 0 ModelDeployments");
    await operator.stop();
    expect(operator.ready()).toEqual({ ok: false, detail: "stopping" });
  });
});
