// Stand-ins for model-server containers on the test cluster. kwok plays the kubelet and runs no
// containers, so a pod's address leads nowhere: for each pod of a model this starts a real local
// `berth serve` (the tiny model) and maps the pod's IP:port to it, the mapping the gateway's
// directory reads through its address-resolver test seam (as KubeAI's tests map pod IPs).
//
// It also does the kubelet parts kwok skips: a pod whose stand-in is still loading is marked not
// Ready (kwok marks every pod Ready at once), and Ready once the stand-in answers; a pod being
// deleted keeps its stand-in serving until the gateway has taken it out of rotation (what the
// rendered preStop pause is for), then the stand-in gets SIGTERM and drains.
import type { AddressResolver } from "../../src/gateway/k8s-directory.js";
import type { KubeClient } from "../../src/k8s/client.js";
import { Informer, type LiveObject } from "../../src/operator/informer.js";
import { type ServeProcess, startServe } from "../support/serve-process.js";

export interface StandInOptions {
  kube: KubeClient;
  namespace: string;
  /** Label selector of the model's pods. */
  selector: string;
  /** The container port the pods' endpoints carry (spec.port). */
  port: number;
  /** `berth serve` arguments (model, parallel, model id). */
  serveArgs: string[];
  /** Stand-ins started ahead, so a pod is served as soon as kwok reports it Ready (rollouts). */
  spares?: number;
  /** The gateway still routes new requests to this pod (its directory lists it as ready). */
  inRotation: (pod: string) => boolean;
  /** Called when a mapping changes (the directory re-reads addresses). */
  onMappingChange: () => void;
  log?: (line: string) => void;
}

export interface StandIn {
  pod: string;
  podIp: string;
  process: ServeProcess;
  /** When the pod was first seen with an address, and when its stand-in was mapped (ms since epoch). */
  seenAt: number;
  mappedAt?: number;
}

export interface StandIns {
  resolveAddress: AddressResolver;
  /** Stand-ins by pod name (serving or draining). */
  readonly byPod: ReadonlyMap<string, StandIn>;
  /** Errors met (a failed start, a failed status patch): a test asserts there are none. */
  readonly errors: string[];
  /** Waits until every stand-in started so far is mapped (or failed). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

export async function startStandIns(options: StandInOptions): Promise<StandIns> {
  const { kube, namespace } = options;
  const log = options.log ?? (() => {});
  const byPod = new Map<string, StandIn>();
  const byAddress = new Map<string, string>();
  const spares: Array<Promise<ServeProcess>> = [];
  const pending = new Set<Promise<void>>();
  const errors: string[] = [];
  let stopped = false;

  const startSpare = () => {
    const spare = startServe(options.serveArgs);
    spare.catch((error: unknown) => errors.push(`spare stand-in: ${String(error)}`));
    spares.push(spare);
  };
  for (let count = 0; count < (options.spares ?? 0); count++) startSpare();

  const track = (work: Promise<void>) => {
    pending.add(work);
    void work.finally(() => pending.delete(work));
  };

  const serve = async (pod: string, podIp: string) => {
    const seenAt = Date.now();
    const spare = spares.shift();
    let process: ServeProcess;
    if (spare) {
      if (options.spares) startSpare();
      process = await spare;
    } else {
      // The container is starting: not Ready until it answers (kwok said Ready already).
      await setPodReady(kube, namespace, pod, false);
      process = await startServe(options.serveArgs);
    }
    const standIn: StandIn = { pod, podIp, process, seenAt };
    byPod.set(pod, standIn);
    if (stopped) {
      process.kill();
      return;
    }
    byAddress.set(`${podIp}:${options.port}`, process.url);
    standIn.mappedAt = Date.now();
    log(`stand-in for ${pod} (${podIp}) at ${process.url} after ${standIn.mappedAt - seenAt} ms`);
    options.onMappingChange();
    if (!spare) await setPodReady(kube, namespace, pod, true);
  };

  const retire = async (standIn: StandIn) => {
    // The pod's preStop pause: serve until the gateway no longer routes here, then drain and exit.
    while (options.inRotation(standIn.pod) && !stopped)
      await new Promise((resolve) => setTimeout(resolve, 50));
    standIn.process.child.kill("SIGTERM");
    await standIn.process.exited;
    // kwok hands a freed pod IP to the next pod: the address may be a newer pod's by now.
    const address = `${standIn.podIp}:${options.port}`;
    if (byAddress.get(address) === standIn.process.url) byAddress.delete(address);
    byPod.delete(standIn.pod);
    log(`stand-in for ${standIn.pod} drained and stopped`);
    options.onMappingChange();
  };

  const seen = new Set<string>();
  const retiring = new Set<string>();
  const onPod = (deleted: boolean, pod: LiveObject) => {
    const name = pod.metadata.name;
    const podIp = (pod.status as { podIP?: string } | undefined)?.podIP;
    if (deleted || pod.metadata.deletionTimestamp) {
      if (retiring.has(name)) return;
      retiring.add(name);
      // A pod deleted before its stand-in was mapped: retire it once it is.
      track(
        (async () => {
          while (!byPod.has(name) && pendingStart.has(name)) await pendingStart.get(name);
          const standIn = byPod.get(name);
          if (standIn) await retire(standIn);
        })().catch((error: unknown) => {
          errors.push(`retiring ${name}: ${String(error)}`);
        }),
      );
      return;
    }
    if (!podIp || seen.has(name)) return;
    seen.add(name);
    const start = serve(name, podIp).catch((error: unknown) => {
      errors.push(`stand-in for ${name}: ${String(error)}`);
    });
    pendingStart.set(name, start);
    track(start.finally(() => pendingStart.delete(name)));
  };
  const pendingStart = new Map<string, Promise<void>>();

  const pods = new Informer({
    client: kube,
    path: `/api/v1/namespaces/${namespace}/pods`,
    labelSelector: options.selector,
    onChange: (event, object) => onPod(event === "deleted", object),
    onError: (error) => log(`pod watch: ${String(error)}`),
  });
  await pods.start();

  return {
    resolveAddress: (address, port) => byAddress.get(`${address}:${port}`),
    byPod,
    errors,
    async settled() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    async stop() {
      stopped = true;
      await pods.stop();
      for (const standIn of byPod.values()) standIn.process.kill();
      for (const spare of spares)
        void spare.then(
          (process) => process.kill(),
          () => {},
        );
      await Promise.allSettled([...pending]);
    },
  };
}

/** Marks a pod Ready or not, as a kubelet does when its readiness probe passes or fails. */
export async function setPodReady(
  kube: KubeClient,
  namespace: string,
  pod: string,
  ready: boolean,
): Promise<void> {
  const status = ready ? "True" : "False";
  await kube.request({
    method: "PATCH",
    path: `/api/v1/namespaces/${namespace}/pods/${pod}/status`,
    contentType: "application/strategic-merge-patch+json",
    body: {
      status: {
        conditions: [
          { type: "Ready", status },
          { type: "ContainersReady", status },
        ],
      },
    },
    // Deleted meanwhile: nothing left to mark.
    allowStatus: [404],
  });
}
