// `berth up --prometheus`: a ready Prometheus setup for local mode in BERTH_HOME/prometheus/: a
// scrape config (the gateway, and the replicas through a file_sd target list that follows them as
// they start and stop), Berth's alert rules, and, when a `prometheus` binary is on PATH, a running
// Prometheus that is stopped with `berth up`.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, openSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { stringify } from "yaml";
import { GATEWAY_JOB, REPLICA_JOB, ruleFileText } from "../monitoring/alerts.js";
import type { Logger } from "../util/log.js";

export const PROMETHEUS_CONFIG = "prometheus.yml";
export const REPLICA_TARGETS = "replicas.json";
export const RULES_FILE = "berth-alerts.rules.yaml";

export interface ReplicaTarget {
  id: string;
  url: string;
}

export interface PrometheusSetupOptions {
  dir: string;
  gatewayUrl: string;
  /** e.g. "5s". */
  scrapeInterval: string;
  /** Address Prometheus listens on when started, e.g. "127.0.0.1:9090". */
  listenAddress: string;
  /** The replicas to scrape now; called again after every change. */
  replicas: () => ReplicaTarget[];
  /** Subscribes to changes of the replica set; returns the unsubscribe function. */
  onChange: (listener: () => void) => () => void;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface PrometheusSetup {
  configFile: string;
  /** The running Prometheus' URL, when one was started. */
  url?: string;
  /** Why none was started (not installed), in words. */
  notStarted?: string;
  close(): Promise<void>;
}

export function prometheusConfig(options: { gatewayUrl: string; scrapeInterval: string }): string {
  const gateway = new URL(options.gatewayUrl);
  return `# Written by \`berth up --prometheus\`: scrapes the gateway and every replica of this berth up.\n${stringify(
    {
      global: { scrape_interval: options.scrapeInterval, evaluation_interval: options.scrapeInterval },
      rule_files: [RULES_FILE],
      scrape_configs: [
        { job_name: GATEWAY_JOB, static_configs: [{ targets: [gateway.host] }] },
        {
          job_name: REPLICA_JOB,
          // The replicas' ports change as they start and stop: the target list follows (file_sd).
          file_sd_configs: [{ files: [REPLICA_TARGETS], refresh_interval: "5s" }],
        },
      ],
    },
    { lineWidth: 0 },
  )}`;
}

/** file_sd JSON: one target per replica, labelled with its replica id (the model label comes from the replica). */
export function replicaTargets(replicas: readonly ReplicaTarget[]): string {
  const sorted = [...replicas].sort((a, b) => a.id.localeCompare(b.id));
  return `${JSON.stringify(
    sorted.map((replica) => ({ targets: [new URL(replica.url).host], labels: { replica: replica.id } })),
    null,
    2,
  )}\n`;
}

export function findOnPath(binary: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir.length === 0) continue;
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export async function setUpPrometheus(options: PrometheusSetupOptions): Promise<PrometheusSetup> {
  const { dir, logger } = options;
  await mkdir(dir, { recursive: true });
  const configFile = join(dir, PROMETHEUS_CONFIG);
  await writeFile(configFile, prometheusConfig(options));
  await writeFile(join(dir, RULES_FILE), ruleFileText());

  // Written whole and renamed into place, so Prometheus never reads half a list.
  let lastTargets = "";
  let writing = Promise.resolve();
  const writeTargets = (): Promise<void> => {
    writing = writing.then(async () => {
      const text = replicaTargets(options.replicas());
      if (text === lastTargets) return;
      lastTargets = text;
      const temp = join(dir, `.${REPLICA_TARGETS}.tmp`);
      await writeFile(temp, text);
      await rename(temp, join(dir, REPLICA_TARGETS));
    });
    return writing.catch((error: unknown) => {
      logger.warn({ err: error }, "could not write Prometheus' replica targets");
    });
  };
  await writeTargets();
  const unsubscribe = options.onChange(() => void writeTargets());

  const binary = findOnPath("prometheus", options.env);
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const setup: PrometheusSetup = {
    configFile,
    async close() {
      unsubscribe();
      await writing.catch(() => undefined);
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
    },
  };
  if (binary === undefined) {
    setup.notStarted = `prometheus is not installed; run: prometheus --config.file=${configFile}`;
    return setup;
  }
  const log = openSync(join(dir, "prometheus.log"), "a");
  child = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=${options.listenAddress}`,
    ],
    { cwd: dir, stdio: ["ignore", log, log] },
  );
  exited = new Promise((resolve) => child?.once("exit", () => resolve()));
  child.once("exit", (code, signal) => {
    // Ctrl-C reaches Prometheus too (same process group): a clean stop is no news.
    if (code !== 0 && signal !== "SIGTERM" && signal !== "SIGINT") {
      // e.g. its port is taken: the view stops showing a URL that does not answer.
      setup.url = undefined;
      setup.notStarted = `prometheus exited (code ${code}); see ${join(dir, "prometheus.log")}`;
      logger.warn(
        { code, signal, log: join(dir, "prometheus.log") },
        "prometheus exited; its log says why (--prometheus-port picks another port)",
      );
    }
  });
  setup.url = `http://${options.listenAddress}`;
  return setup;
}
