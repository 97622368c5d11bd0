// Deploying model deployments end to end: resolve each model's namespace, render, apply, wait for
// the rollouts. The CLI's `berth deploy` and the benchmark call this; tests call it in-process.
import type { ModelDeployment } from "../spec/schema.js";
import {
  type ApplyOptions,
  type ApplyResult,
  applyObjects,
  type DeleteOutcome,
  deleteInstances,
} from "./apply.js";
import type { KubeClient } from "./client.js";
import type { KubeObject } from "./objects.js";
import { namespaceOf, type RenderOptions, renderDeployment } from "./render.js";
import { waitForRollouts } from "./rollout.js";

export interface DeployOptions extends ApplyOptions, RenderOptions {
  /** Wait for every Deployment to be rolled out (default true; never in a dry run). */
  wait?: boolean;
  timeoutMs?: number;
  /** Rollout progress lines (onProgress gets one line per applied object). */
  onRollout?: (line: string) => void;
}

export const DEFAULT_ROLLOUT_TIMEOUT_MS = 5 * 60_000;

/** The namespace a model goes to: the flag, the spec, else the kube context's namespace. */
export function targetNamespace(
  client: KubeClient,
  deployment: ModelDeployment,
  options: RenderOptions = {},
): string {
  return namespaceOf(deployment, options) ?? client.defaultNamespace;
}

/** The objects a deploy sends: rendered, each with its namespace filled in. */
export function renderForCluster(
  client: KubeClient,
  deployments: readonly ModelDeployment[],
  options: RenderOptions = {},
): KubeObject[] {
  return deployments.flatMap((deployment) =>
    renderDeployment(deployment, { ...options, namespace: targetNamespace(client, deployment, options) }),
  );
}

export async function deployModels(
  client: KubeClient,
  deployments: readonly ModelDeployment[],
  options: DeployOptions = {},
): Promise<ApplyResult> {
  const objects = renderForCluster(client, deployments, options);
  const result = await applyObjects(client, objects, options);
  if (options.wait !== false && !options.dryRun) {
    await waitForRollouts(client, result.rollouts, {
      timeoutMs: options.timeoutMs ?? DEFAULT_ROLLOUT_TIMEOUT_MS,
      ...(options.onRollout ? { onProgress: options.onRollout } : {}),
    });
  }
  return result;
}

/** Deletes what Berth created for these models (by label), namespace by namespace. */
export async function deleteModels(
  client: KubeClient,
  deployments: readonly ModelDeployment[],
  options: RenderOptions & { dryRun?: boolean; onProgress?: (line: string) => void } = {},
): Promise<DeleteOutcome[]> {
  const byNamespace = new Map<string, string[]>();
  for (const deployment of deployments) {
    const namespace = targetNamespace(client, deployment, options);
    byNamespace.set(namespace, [...(byNamespace.get(namespace) ?? []), deployment.metadata.name]);
  }
  const deleted = await Promise.all(
    [...byNamespace].map(([namespace, names]) => deleteInstances(client, namespace, names, options)),
  );
  return deleted.flat();
}
