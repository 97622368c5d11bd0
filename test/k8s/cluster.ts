// A real Kubernetes control plane on 127.0.0.1 for the k8s test suite: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (the kubelets of simulated Nodes), started and torn down by PID.
//
// API for tests under test/k8s (binaries come from scripts/k8s-testenv/build.sh; `npm run test:k8s` builds them):
//
//   clusterAvailability(env?) -> { ok: true, external, binDir? } | { ok: false, reason }
//     Synchronous, for `describe.skipIf(!availability.ok)`; `reason` says what to install or run.
//
//   startCluster(options?) -> Promise<Cluster>
//     options.nodes           the simulated Nodes to register (default DEFAULT_NODES: three CPU nodes
//                             berth-cpu-0..2 with 8 cpu / 32Gi / 110 pods, and berth-gpu-0 with 16 cpu / 128Gi /
//                             110 pods / nvidia.com/gpu: 4, label nvidia.com/gpu.present=true and taint
//                             nvidia.com/gpu=present:NoSchedule — see GPU_NODE_LABEL and GPU_TAINT)
//     options.readyTimeoutMs  bound on the whole bring-up (default 180 s); it polls, never sleeps a fixed time
//     options.binDir          where the binaries are (default: found like build.sh caches them)
//   Resolves once /readyz is ok, the controller-manager and scheduler are healthy, every simulated Node is
//   Ready and the `default` ServiceAccount exists (so Pods can be created at once).
//
//   Cluster
//     kubeconfigPath   admin kubeconfig (user in group system:masters), certificates embedded; external: $KUBECONFIG
//     server           https://127.0.0.1:<port>
//     external         true when BERTH_K8S_EXTERNAL=1: the cluster in $KUBECONFIG is used and nothing is started
//     nodes            the simulated Nodes registered (empty when external)
//     kubectl(args, { input?, allowFailure?, kubeconfig?, timeoutMs? }) -> { code, stdout, stderr }
//                      runs the pinned kubectl against this cluster; throws KubectlError on a non-zero exit
//                      unless allowFailure
//     kubectlJson(args) -> the parsed output of `kubectl <args> -o json`
//     createNamespace(name) -> creates it and waits until its `default` ServiceAccount exists (the ServiceAccount
//                      admission plugin rejects Pods before that)
//     tokenKubeconfig(token) -> path of a kubeconfig for the same server that authenticates with a bearer
//                      token (e.g. from `kubectl create token`), to act as a ServiceAccount for real
//     stop()           kills every process it started (whole process groups, SIGTERM then SIGKILL) and removes
//                      its temp dir; idempotent. Also done on process exit, and each child carries
//                      PR_SET_PDEATHSIG (setpriv) so a killed test worker leaves nothing behind.
//
//   pollUntil(probe, { what, timeoutMs, intervalMs?, abort? }) -> the probe's first result that is not undefined
//
// Env: BERTH_K8S_EXTERNAL=1 (+ KUBECONFIG) to use an existing cluster; BERTH_K8S_BIN_DIR to point at binaries
// elsewhere; BERTH_K8S_KEEP=1 keeps the temp dir (component logs under <dir>/logs) after stop().
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import { freePort } from "../support/net.js";
import { REPO_ROOT } from "../support/repo-root.js";
import { runProcess } from "../support/run-process.js";

const BUILD_SCRIPT = join(REPO_ROOT, "scripts", "k8s-testenv", "build.sh");
const BINARIES = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubectl",
  "kwok",
] as const;
const KWOK_STAGES_FILE = "kwok-stages.yaml";

const SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16";
const KUBERNETES_SERVICE_IP = "10.96.0.1";
const POD_CIDR = "10.244.0.0/16";
const ADVERTISE_ADDRESS = "192.0.2.10";

/** kwok manages only Nodes carrying this annotation, so it never touches a real cluster's nodes. */
export const KWOK_NODE_ANNOTATION = { key: "kwok.x-k8s.io/node", value: "fake" } as const;
export const GPU_RESOURCE = "nvidia.com/gpu";
export const GPU_NODE_LABEL = { key: "nvidia.com/gpu.present", value: "true" } as const;
export const GPU_TAINT = { key: "nvidia.com/gpu", value: "present", effect: "NoSchedule" } as const;

export interface NodeTaint {
  key: string;
  value?: string;
  effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}

export interface SimulatedNode {
  name: string;
  cpu: string;
  memory: string;
  pods: number;
  gpus?: number;
  labels?: Record<string, string>;
  taints?: NodeTaint[];
}

export const DEFAULT_NODES: readonly SimulatedNode[] = [
  { name: "berth-cpu-0", cpu: "8", memory: "32Gi", pods: 110 },
  { name: "berth-cpu-1", cpu: "8", memory: "32Gi", pods: 110 },
  { name: "berth-cpu-2", cpu: "8", memory: "32Gi", pods: 110 },
  {
    name: "berth-gpu-0",
    cpu: "16",
    memory: "128Gi",
    pods: 110,
    gpus: 4,
    labels: { [GPU_NODE_LABEL.key]: GPU_NODE_LABEL.value },
    taints: [{ ...GPU_TAINT }],
  },
];

export interface StartClusterOptions {
  nodes?: readonly SimulatedNode[];
  readyTimeoutMs?: number;
  binDir?: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (e.g. a manifest for `apply -f -`). */
  input?: string;
  /** Resolve with the result instead of throwing when kubectl exits non-zero. */
  allowFailure?: boolean;
  /** Another kubeconfig for this call (e.g. from tokenKubeconfig). */
  kubeconfig?: string;
  timeoutMs?: number;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Cluster {
  kubeconfigPath: string;
  server: string;
  external: boolean;
  nodes: readonly SimulatedNode[];
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  kubectlJson(args: readonly string[], options?: Omit<KubectlOptions, "allowFailure">): Promise<unknown>;
  createNamespace(name: string): Promise<void>;
  tokenKubeconfig(token: string): Promise<string>;
  stop(): Promise<void>;
}

export class KubectlError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly result: KubectlResult,
  ) {
    super(`kubectl ${args.join(" ")} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = "KubectlError";
  }
}

export type ClusterAvailability =
  | { ok: true; external: boolean; binDir?: string }
  | { ok: false; reason: string };

// ---------------------------------------------------------------------------------------------------------
// Pinned versions and where the binaries are: build.sh is the one place the versions are written.

interface PinnedVersions {
  kubernetes: string;
  etcd: string;
  kwok: string;
}

export function pinnedVersions(): PinnedVersions {
  const script = readFileSync(BUILD_SCRIPT, "utf8");
  const read = (name: string): string => {
    const match = new RegExp(`^${name}=(\\S+)$`, "m").exec(script);
    if (!match?.[1]) throw new Error(`${BUILD_SCRIPT} does not set ${name}`);
    return match[1];
  };
  return { kubernetes: read("K8S_VERSION"), etcd: read("ETCD_VERSION"), kwok: read("KWOK_VERSION") };
}

function binDirCandidates(env: NodeJS.ProcessEnv, versions: PinnedVersions): string[] {
  const candidates: string[] = [];
  if (env.BERTH_K8S_BIN_DIR) candidates.push(env.BERTH_K8S_BIN_DIR);
  // build.sh caches under $BERTH_HOME (else ~/.cache/berth). Test setups point BERTH_HOME at a per-run
  // home, so the user-level cache is looked at too.
  if (env.BERTH_HOME) candidates.push(join(env.BERTH_HOME, "k8s", versions.kubernetes, "bin"));
  candidates.push(join(homedir(), ".cache", "berth", "k8s", versions.kubernetes, "bin"));
  return candidates;
}

function isWarmBinDir(dir: string, versions: PinnedVersions): boolean {
  try {
    for (const binary of BINARIES) accessSync(join(dir, binary), constants.X_OK);
    accessSync(join(dir, KWOK_STAGES_FILE), constants.R_OK);
    const stamp = readFileSync(join(dir, "VERSIONS"), "utf8").trim();
    return stamp === `kubernetes=${versions.kubernetes} etcd=${versions.etcd} kwok=${versions.kwok}`;
  } catch {
    return false;
  }
}

export function findBinDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const versions = pinnedVersions();
  return binDirCandidates(env, versions).find((dir) => isWarmBinDir(dir, versions));
}

function commandWorks(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: "ignore" });
  return result.error === undefined && result.status === 0;
}

export function clusterAvailability(env: NodeJS.ProcessEnv = process.env): ClusterAvailability {
  const binDir = findBinDir(env);
  if (env.BERTH_K8S_EXTERNAL === "1") {
    if (!env.KUBECONFIG) return { ok: false, reason: "BERTH_K8S_EXTERNAL=1 but KUBECONFIG is not set" };
    if (!binDir && !commandWorks("kubectl", ["version", "--client"])) {
      return { ok: false, reason: "BERTH_K8S_EXTERNAL=1 but no kubectl: put one on PATH or run build.sh" };
    }
    return binDir ? { ok: true, external: true, binDir } : { ok: true, external: true };
  }
  if (!binDir) {
    const versions = pinnedVersions();
    const looked = binDirCandidates(env, versions).join(", ");
    const what = `the Kubernetes ${versions.kubernetes} test binaries are not cached (looked in ${looked})`;
    const reason = commandWorks("go", ["version"])
      ? `${what}; run scripts/k8s-testenv/build.sh`
      : `Go is not installed and ${what}; install Go >= 1.26 and run scripts/k8s-testenv/build.sh`;
    return { ok: false, reason };
  }
  if (!commandWorks("openssl", ["version"])) {
    return { ok: false, reason: "openssl is needed to generate the test cluster's certificates" };
  }
  return { ok: true, external: false, binDir };
}

// ---------------------------------------------------------------------------------------------------------
// Polling

export interface PollOptions {
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Checked before each try; a string ends the wait at once with that message (e.g. a process died). */
  abort?: () => string | undefined;
}

/** Calls `probe` until it returns something other than undefined; a throw counts as "not yet". */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  options: PollOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const intervalMs = options.intervalMs ?? 200;
  let lastError: unknown;
  for (;;) {
    const aborted = options.abort?.();
    if (aborted !== undefined) throw new Error(`while waiting for ${options.what}: ${aborted}`);
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}${cause}`);
    }
    await delay(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Node manifests (pure)

export function nodeManifest(node: SimulatedNode): Record<string, unknown> {
  const resources: Record<string, string> = {
    cpu: node.cpu,
    memory: node.memory,
    pods: String(node.pods),
  };
  if (node.gpus !== undefined) resources[GPU_RESOURCE] = String(node.gpus);
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: node.name,
      annotations: {
        [KWOK_NODE_ANNOTATION.key]: KWOK_NODE_ANNOTATION.value,
        "node.alpha.kubernetes.io/ttl": "0",
      },
      labels: {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        type: "kwok",
        ...node.labels,
      },
    },
    spec: node.taints && node.taints.length > 0 ? { taints: node.taints } : {},
    // Nodes accept status on create; kwok's node-initialize stage keeps the capacity given here.
    status: { capacity: resources, allocatable: resources },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Certificates and kubeconfigs

interface Pki {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  saPublicKey: string;
  saPrivateKey: string;
  clients: Record<"admin" | "controllerManager" | "scheduler", { cert: string; key: string }>;
}

const OPENSSL_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,IP:${KUBERNETES_SERVICE_IP},DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
`;

function openssl(args: string[], cwd: string): void {
  const result = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (result.error || result.status !== 0) {
    throw new Error(`openssl ${args.join(" ")} failed: ${result.error?.message ?? result.stderr}`);
  }
}

/** A CA, a serving certificate for 127.0.0.1 and client certificates, all P-256, valid for two days. */
function generatePki(dir: string): Pki {
  writeFileSync(join(dir, "openssl.cnf"), OPENSSL_CONFIG);
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    ["req", "-x509", ...newKey, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2"].concat([
      "-config",
      "openssl.cnf",
      "-extensions",
      "ca",
      "-subj",
      "/CN=berth-test-ca",
    ]),
    dir,
  );
  const leaf = (name: string, subject: string, extensions: "server" | "client"): void => {
    openssl(
      ["req", "-x509", ...newKey, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2"]
        .concat(["-CA", "ca.crt", "-CAkey", "ca.key", "-config", "openssl.cnf", "-extensions", extensions])
        .concat(["-subj", subject]),
      dir,
    );
  };
  leaf("apiserver", "/CN=kube-apiserver", "server");
  leaf("admin", "/O=system:masters/CN=berth-admin", "client");
  leaf("controller-manager", "/CN=system:kube-controller-manager", "client");
  leaf("scheduler", "/CN=system:kube-scheduler", "client");
  const serviceAccountKeys = generateKeyPairSync("ec", {
    namedCurve: "P-256",
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const read = (file: string): string => readFileSync(join(dir, file), "utf8");
  const pki: Pki = {
    caCert: read("ca.crt"),
    caKey: read("ca.key"),
    servingCert: read("apiserver.crt"),
    servingKey: read("apiserver.key"),
    saPublicKey: serviceAccountKeys.publicKey,
    saPrivateKey: serviceAccountKeys.privateKey,
    clients: {
      admin: { cert: read("admin.crt"), key: read("admin.key") },
      controllerManager: { cert: read("controller-manager.crt"), key: read("controller-manager.key") },
      scheduler: { cert: read("scheduler.crt"), key: read("scheduler.key") },
    },
  };
  writeFileSync(join(dir, "sa.key"), pki.saPrivateKey, { mode: 0o600 });
  writeFileSync(join(dir, "sa.pub"), pki.saPublicKey);
  return pki;
}

const base64 = (text: string): string => Buffer.from(text, "utf8").toString("base64");

type KubeconfigUser = { "client-certificate-data": string; "client-key-data": string } | { token: string };

function kubeconfig(server: string, caCertBase64: string, userName: string, user: KubeconfigUser): string {
  // JSON is YAML, and kubectl reads either.
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "berth-test", cluster: { server, "certificate-authority-data": caCertBase64 } }],
      users: [{ name: userName, user }],
      contexts: [{ name: "berth-test", context: { cluster: "berth-test", user: userName } }],
      "current-context": "berth-test",
    },
    null,
    2,
  );
}

function certKubeconfig(server: string, pki: Pki, userName: string, client: { cert: string; key: string }) {
  return kubeconfig(server, base64(pki.caCert), userName, {
    "client-certificate-data": base64(client.cert),
    "client-key-data": base64(client.key),
  });
}

// ---------------------------------------------------------------------------------------------------------
// Processes

interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logPath: string;
  /** Set once the process has exited (or failed to start): a one-line reason. */
  exitReason?: string;
  exited: Promise<void>;
}

const hasSetpriv = commandWorks("setpriv", ["--version"]);

function launch(name: string, binary: string, args: string[], logDir: string): ManagedProcess {
  const logPath = join(logDir, `${name}.log`);
  const logFd = openSync(logPath, "a");
  // setpriv sets PR_SET_PDEATHSIG and execs the binary, so the kernel kills it if this process dies
  // without running its exit handlers (a test worker killed with SIGKILL).
  const [command, argv] = hasSetpriv
    ? ["setpriv", ["--pdeathsig", "KILL", "--", binary, ...args]]
    : [binary, args];
  // detached: its own process group, so stop() can signal everything it forks.
  const child = spawn(command, argv, { detached: true, stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  const managed: ManagedProcess = {
    name,
    child,
    logPath,
    exited: new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        managed.exitReason ??= `${name} exited (code ${code}, signal ${signal})`;
        resolve();
      });
      child.once("error", (error) => {
        managed.exitReason ??= `${name} failed to start: ${error.message}`;
        resolve();
      });
    }),
  };
  return managed;
}

function signalGroup(proc: ManagedProcess, signal: NodeJS.Signals): void {
  if (proc.exitReason !== undefined || proc.child.pid === undefined) return;
  try {
    process.kill(-proc.child.pid, signal);
  } catch {
    // Already gone.
  }
}

async function stopProcess(proc: ManagedProcess, graceMs: number): Promise<void> {
  signalGroup(proc, "SIGTERM");
  const stopped = await Promise.race([proc.exited.then(() => true), delay(graceMs).then(() => false)]);
  if (!stopped) {
    signalGroup(proc, "SIGKILL");
    await proc.exited;
  }
}

function logTail(proc: ManagedProcess, lines = 15): string {
  try {
    const text = readFileSync(proc.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    return `--- ${proc.name} (${proc.logPath}) ---\n${text}`;
  } catch {
    return `--- ${proc.name}: no log ---`;
  }
}

// Everything still running when the test process exits is killed synchronously there.
const liveClusters = new Set<{ killNow(): void }>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const cluster of liveClusters) cluster.killNow();
  });
}

const TEMP_DIR_PREFIX = "berth-k8s-";
const OWNER_FILE = "owner.pid";

/** A test process killed outright leaves its temp dir (its children die with it); the next start removes it. */
function removeAbandonedTempDirs(): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!/^berth-k8s-[A-Za-z0-9]{6}$/.test(entry)) continue;
    const dir = join(tmpdir(), entry);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, OWNER_FILE), "utf8"));
    } catch {
      continue; // Not ours, or still being created.
    }
    if (!Number.isInteger(owner) || owner <= 0 || processAlive(owner)) continue;
    rmSync(dir, { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP probes

interface HttpResult {
  status: number;
  body: string;
}

interface TlsClient {
  ca?: string;
  cert?: string;
  key?: string;
  /** Only for the loopback health endpoints of the scheduler and controller-manager (self-signed). */
  insecure?: boolean;
}

function httpCall(
  url: string,
  method: string,
  tls: TlsClient | undefined,
  body?: string,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const onResponse = (res: import("node:http").IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    };
    const request = url.startsWith("https:")
      ? httpsRequest(
          url,
          {
            method,
            headers,
            timeout: 5_000,
            ca: tls?.ca,
            cert: tls?.cert,
            key: tls?.key,
            rejectUnauthorized: !tls?.insecure,
          },
          onResponse,
        )
      : httpRequest(url, { method, headers, timeout: 5_000 }, onResponse);
    request.on("timeout", () => request.destroy(new Error(`${method} ${url} timed out`)));
    request.on("error", reject);
    request.end(body);
  });
}

const NodeListSchema = z.object({
  items: z.array(
    z.object({
      metadata: z.object({ name: z.string() }),
      status: z
        .object({ conditions: z.array(z.object({ type: z.string(), status: z.string() })).optional() })
        .optional(),
    }),
  ),
});

const EtcdHealthSchema = z.object({ health: z.string() });

// ---------------------------------------------------------------------------------------------------------
// kubectl

async function runKubectl(
  kubectlPath: string,
  kubeconfigPath: string,
  args: readonly string[],
  options: KubectlOptions = {},
): Promise<KubectlResult> {
  const run = await runProcess(kubectlPath, args, {
    env: { ...process.env, KUBECONFIG: options.kubeconfig ?? kubeconfigPath },
    input: options.input ?? "",
    timeoutMs: options.timeoutMs ?? 120_000,
  });
  const result = { code: run.code ?? (run.signal ? 128 : 1), stdout: run.stdout, stderr: run.stderr };
  if (result.code !== 0 && !options.allowFailure) throw new KubectlError(args, result);
  return result;
}

const KubeconfigViewSchema = z.object({
  clusters: z.array(z.object({ name: z.string(), cluster: z.record(z.string(), z.unknown()) })).min(1),
});

function clusterHelpers(kubectlPath: string, kubeconfigPath: string, tempDir: string) {
  let tokenConfigs = 0;
  const kubectl = (args: readonly string[], options?: KubectlOptions) =>
    runKubectl(kubectlPath, kubeconfigPath, args, options);
  const kubectlJson = async (args: readonly string[], options?: Omit<KubectlOptions, "allowFailure">) => {
    const result = await kubectl([...args, "-o", "json"], options);
    return JSON.parse(result.stdout) as unknown;
  };
  const tokenKubeconfig = async (token: string): Promise<string> => {
    const view = KubeconfigViewSchema.parse(await kubectlJson(["config", "view", "--raw", "--minify"]));
    const cluster = view.clusters[0]!;
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [cluster],
      users: [{ name: "token-user", user: { token } }],
      contexts: [{ name: "token", context: { cluster: cluster.name, user: "token-user" } }],
      "current-context": "token",
    };
    tokenConfigs += 1;
    const path = join(tempDir, `token-${tokenConfigs}.kubeconfig`);
    writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
    return path;
  };
  const createNamespace = async (name: string): Promise<void> => {
    await kubectl(["create", "namespace", name]);
    await pollUntil(
      async () => {
        const result = await kubectl(["get", "serviceaccount", "default", "-n", name], {
          allowFailure: true,
        });
        return result.code === 0 ? true : undefined;
      },
      { what: `the default ServiceAccount in namespace ${name}`, timeoutMs: 60_000 },
    );
  };
  return { kubectl, kubectlJson, createNamespace, tokenKubeconfig };
}

// ---------------------------------------------------------------------------------------------------------
// startCluster

export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  const availability = clusterAvailability();
  if (!availability.ok) throw new Error(`cannot start a test cluster: ${availability.reason}`);
  if (availability.external) return useExternalCluster(availability.binDir);
  const binDir = options.binDir ?? availability.binDir;
  if (!binDir) throw new Error("no Kubernetes binaries");
  return startLocalCluster(binDir, options);
}

async function useExternalCluster(binDir: string | undefined): Promise<Cluster> {
  const kubeconfigPath = process.env.KUBECONFIG ?? "";
  const tempDir = mkdtempSync(join(tmpdir(), "berth-k8s-external-"));
  const kubectlPath = binDir ? join(binDir, "kubectl") : "kubectl";
  const helpers = clusterHelpers(kubectlPath, kubeconfigPath, tempDir);
  const server = (
    await helpers.kubectl(["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"])
  ).stdout.trim();
  return {
    kubeconfigPath,
    server,
    external: true,
    nodes: [],
    ...helpers,
    async stop() {
      rmSync(tempDir, { recursive: true, force: true });
    },
  };
}

async function startLocalCluster(binDir: string, options: StartClusterOptions): Promise<Cluster> {
  const timeoutMs = options.readyTimeoutMs ?? 180_000;
  const deadline = Date.now() + timeoutMs;
  const remaining = (): number => Math.max(1_000, deadline - Date.now());
  const nodes = options.nodes ?? DEFAULT_NODES;
  const bin = (name: (typeof BINARIES)[number]): string => join(binDir, name);

  removeAbandonedTempDirs();
  const tempDir = mkdtempSync(join(tmpdir(), TEMP_DIR_PREFIX));
  writeFileSync(join(tempDir, OWNER_FILE), String(process.pid));
  const logDir = join(tempDir, "logs");
  const pkiDir = join(tempDir, "pki");
  for (const dir of [logDir, pkiDir]) mkdirSync(dir);

  const processes: ManagedProcess[] = [];
  let stopped = false;
  const handle = {
    killNow(): void {
      for (const proc of processes) signalGroup(proc, "SIGKILL");
      if (process.env.BERTH_K8S_KEEP !== "1") rmSync(tempDir, { recursive: true, force: true });
    },
  };
  installExitHook();
  liveClusters.add(handle);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Clients first, etcd last, so the API server shuts down against a live store.
    const [etcd, ...rest] = processes;
    await Promise.all(rest.map((proc) => stopProcess(proc, 10_000)));
    if (etcd) await stopProcess(etcd, 10_000);
    liveClusters.delete(handle);
    if (process.env.BERTH_K8S_KEEP !== "1") rmSync(tempDir, { recursive: true, force: true });
  };
  const deadProcess = (): string | undefined => {
    const dead = processes.find((proc) => proc.exitReason !== undefined);
    return dead ? `${dead.exitReason}\n${logTail(dead)}` : undefined;
  };

  try {
    const pki = generatePki(pkiDir);
    const [etcdClientPort, etcdPeerPort, apiserverPort, controllerManagerPort, schedulerPort] =
      await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
    const server = `https://127.0.0.1:${apiserverPort}`;
    const kubeconfigPath = join(tempDir, "admin.kubeconfig");
    writeFileSync(kubeconfigPath, certKubeconfig(server, pki, "berth-admin", pki.clients.admin), {
      mode: 0o600,
    });
    const controllerManagerKubeconfig = join(tempDir, "controller-manager.kubeconfig");
    writeFileSync(
      controllerManagerKubeconfig,
      certKubeconfig(server, pki, "system:kube-controller-manager", pki.clients.controllerManager),
      { mode: 0o600 },
    );
    const schedulerKubeconfig = join(tempDir, "scheduler.kubeconfig");
    writeFileSync(
      schedulerKubeconfig,
      certKubeconfig(server, pki, "system:kube-scheduler", pki.clients.scheduler),
      { mode: 0o600 },
    );
    const pkiFile = (name: string): string => join(pkiDir, name);
    const adminTls: TlsClient = { ca: pki.caCert, cert: pki.clients.admin.cert, key: pki.clients.admin.key };

    // etcd
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    processes.push(
      launch(
        "etcd",
        bin("etcd"),
        [
          "--name=berth",
          `--data-dir=${join(tempDir, "etcd")}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=berth=${peerUrl}`,
          // A throwaway store: durability buys nothing and fsync is the slowest part on a shared disk.
          "--unsafe-no-fsync=true",
          "--quota-backend-bytes=1073741824",
          "--log-level=warn",
        ],
        logDir,
      ),
    );
    await pollUntil(
      async () => {
        const response = await httpCall(`${etcdUrl}/health`, "GET", undefined);
        return EtcdHealthSchema.parse(JSON.parse(response.body)).health === "true" ? true : undefined;
      },
      { what: "etcd /health", timeoutMs: remaining(), abort: deadProcess },
    );

    // kube-apiserver: RBAC + Node authorization and the default admission plugins plus NodeRestriction,
    // as kubeadm configures a real cluster.
    processes.push(
      launch(
        "kube-apiserver",
        bin("kube-apiserver"),
        [
          // The address published in the `kubernetes` Service's endpoints; it must not be loopback. Nothing here
          // dials it (no real pods), so a TEST-NET address stands in; clients use --bind-address.
          `--advertise-address=${ADVERTISE_ADDRESS}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${apiserverPort}`,
          `--etcd-servers=${etcdUrl}`,
          `--tls-cert-file=${pkiFile("apiserver.crt")}`,
          `--tls-private-key-file=${pkiFile("apiserver.key")}`,
          `--client-ca-file=${pkiFile("ca.crt")}`,
          "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
          `--service-account-key-file=${pkiFile("sa.pub")}`,
          `--service-account-signing-key-file=${pkiFile("sa.key")}`,
          `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
          "--authorization-mode=Node,RBAC",
          "--enable-admission-plugins=NodeRestriction",
          "--allow-privileged=true",
          "--profiling=false",
        ],
        logDir,
      ),
    );
    await pollUntil(
      async () => {
        const response = await httpCall(`${server}/readyz`, "GET", adminTls);
        return response.status === 200 ? true : undefined;
      },
      { what: "kube-apiserver /readyz", timeoutMs: remaining(), abort: deadProcess },
    );

    processes.push(
      launch(
        "kube-controller-manager",
        bin("kube-controller-manager"),
        [
          `--kubeconfig=${controllerManagerKubeconfig}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${controllerManagerPort}`,
          `--service-account-private-key-file=${pkiFile("sa.key")}`,
          `--root-ca-file=${pkiFile("ca.crt")}`,
          `--cluster-signing-cert-file=${pkiFile("ca.crt")}`,
          `--cluster-signing-key-file=${pkiFile("ca.key")}`,
          `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
          "--use-service-account-credentials=true",
          "--controllers=*",
          "--leader-elect=false",
          "--profiling=false",
        ],
        logDir,
      ),
    );
    processes.push(
      launch(
        "kube-scheduler",
        bin("kube-scheduler"),
        [
          `--kubeconfig=${schedulerKubeconfig}`,
          "--bind-address=127.0.0.1",
          `--secure-port=${schedulerPort}`,
          "--leader-elect=false",
          "--profiling=false",
        ],
        logDir,
      ),
    );
    processes.push(
      launch(
        "kwok",
        bin("kwok"),
        [
          `--kubeconfig=${kubeconfigPath}`,
          // Explicit config: kwok would otherwise read ~/.kwok/kwok.yaml.
          `--config=${join(binDir, KWOK_STAGES_FILE)}`,
          "--manage-all-nodes=false",
          `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION.key}=${KWOK_NODE_ANNOTATION.value}`,
          `--cidr=${POD_CIDR}`,
          // Renew the simulated nodes' leases (kwokctl passes this too): without it every node turns
          // NotReady after ~50 s, pods go Ready=False and Deployments never become Available again.
          "--node-lease-duration-seconds=40",
        ],
        logDir,
      ),
    );

    for (const node of nodes) {
      const response = await httpCall(
        `${server}/api/v1/nodes`,
        "POST",
        adminTls,
        JSON.stringify(nodeManifest(node)),
      );
      if (response.status !== 201) {
        throw new Error(`registering node ${node.name}: HTTP ${response.status} ${response.body}`);
      }
    }

    await pollUntil(
      async () => {
        const [controllerManager, scheduler] = await Promise.all([
          httpCall(`https://127.0.0.1:${controllerManagerPort}/healthz`, "GET", { insecure: true }),
          httpCall(`https://127.0.0.1:${schedulerPort}/readyz`, "GET", { insecure: true }),
        ]);
        return controllerManager.status === 200 && scheduler.status === 200 ? true : undefined;
      },
      {
        what: "kube-controller-manager /healthz and kube-scheduler /readyz",
        timeoutMs: remaining(),
        abort: deadProcess,
      },
    );
    const wanted = new Set(nodes.map((node) => node.name));
    await pollUntil(
      async () => {
        const response = await httpCall(`${server}/api/v1/nodes`, "GET", adminTls);
        const list = NodeListSchema.parse(JSON.parse(response.body));
        const ready = list.items.filter(
          (item) =>
            wanted.has(item.metadata.name) &&
            item.status?.conditions?.some(
              (condition) => condition.type === "Ready" && condition.status === "True",
            ),
        );
        return ready.length === wanted.size ? true : undefined;
      },
      { what: `nodes Ready (${[...wanted].join(", ")})`, timeoutMs: remaining(), abort: deadProcess },
    );
    // The ServiceAccount admission plugin rejects Pods until the controller-manager has made `default`.
    await pollUntil(
      async () => {
        const response = await httpCall(
          `${server}/api/v1/namespaces/default/serviceaccounts/default`,
          "GET",
          adminTls,
        );
        return response.status === 200 ? true : undefined;
      },
      { what: "the default ServiceAccount", timeoutMs: remaining(), abort: deadProcess },
    );

    return {
      kubeconfigPath,
      server,
      external: false,
      nodes,
      ...clusterHelpers(bin("kubectl"), kubeconfigPath, tempDir),
      stop,
    };
  } catch (error) {
    const logs = processes.map((proc) => logTail(proc)).join("\n");
    await stop();
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`test cluster did not come up: ${message}\n${logs}`, { cause: error });
  }
}
