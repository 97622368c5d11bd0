// Deploying rendered objects: server-side apply with field manager "berth" (never forcing fields
// someone else owns), refusing names Berth did not create, label-scoped prune, and server dry-run.
//
// Requests: one metadata-only LIST per kind and namespace, then one PATCH per object. An unchanged
// object is still applied (that re-asserts the spec over drift); the API server writes nothing for an
// apply that changes nothing, so its resourceVersion stays (the k8s suite checks it).
import type { KubeClient, KubeResponse } from "./client.js";
import { K8sError } from "./errors.js";
import {
  FIELD_MANAGER,
  type KubeObject,
  objectRef,
  RESOURCE_TYPES,
  resourcePath,
  resourceTypeOf,
} from "./objects.js";
import { diffObjects, type ExistingObject, instanceOf, isOwnedBy, planApply } from "./plan.js";
import type { RolloutTarget } from "./rollout.js";
import { deploymentSchema } from "./rollout.js";

export interface ApplyOptions {
  /** Ask the API server to validate and compute everything, and persist nothing (`--dry-run=server`). */
  dryRun?: boolean;
  /** Delete this model's objects that the spec no longer renders. */
  prune?: boolean;
  /** Take over fields other managers set (`--force-conflicts`). */
  forceConflicts?: boolean;
  /** Models applied at the same time (each model's objects go in order). */
  concurrency?: number;
  /** The server-side apply field manager (default "berth"; the operator applies as "berth-operator"). */
  fieldManager?: string;
  onProgress?: (line: string) => void;
}

export type ObjectAction = "created" | "configured" | "unchanged" | "pruned";

export interface ObjectOutcome {
  kind: string;
  name: string;
  namespace: string;
  action: ObjectAction;
  /** Changed fields (dry run, or an update Berth could compare). */
  changes: string[];
}

export interface ApplyResult {
  dryRun: boolean;
  objects: ObjectOutcome[];
  /** The Deployments to wait for, at the generation this apply produced (none in a dry run). */
  rollouts: RolloutTarget[];
}

/** Field managers that are Berth's own imperative changes (berth scale): a deploy may take their fields back. */
const BERTH_MANAGER = /^berth(-|$)/;

/** Applies objects that already carry their namespace. Checks ownership of every name before the first write. */
export async function applyObjects(
  client: KubeClient,
  objects: readonly KubeObject[],
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  for (const object of objects) {
    if (!object.metadata.namespace) throw new Error(`${objectRef(object)} has no namespace`);
  }
  const namespaces = [...new Set(objects.map((object) => object.metadata.namespace as string))];
  const renderedKinds = new Set(objects.map((object) => object.kind));
  const kindsToList = RESOURCE_TYPES.filter((type) => options.prune || renderedKinds.has(type.kind));

  // Settled in order, so a failure names the first kind in apply order (ServiceMonitor before
  // PrometheusRule when the operator's CRDs are missing), not whichever answer came first.
  const listed = await Promise.allSettled(
    namespaces.flatMap((namespace) =>
      kindsToList.map((type) => listExisting(client, type.kind, namespace, renderedKinds.has(type.kind))),
    ),
  );
  const failed = listed.find((result) => result.status === "rejected");
  if (failed) throw failed.reason;
  const existing = listed.flatMap((result) => (result.status === "fulfilled" ? result.value : []));
  const plan = planApply(objects, existing);
  if (plan.notOwned.length > 0) {
    const lines = plan.notOwned.map(
      ({ object, existing: found }) =>
        `${objectRef(object)} in namespace "${found.namespace}" exists and Berth did not create it for "${instanceOf(object)}" (managed by: ${found.managers.join(", ") || "unknown"})`,
    );
    throw new K8sError(
      "BERTH_K8S_NOT_OWNED",
      `${lines.join("; ")}. Berth does not take over objects it did not create: delete or rename them, or give the model another name.`,
      { object: objectRef(plan.notOwned[0]?.object as KubeObject) },
    );
  }

  const byInstance = new Map<string, typeof plan.apply>();
  for (const planned of plan.apply) {
    const key = `${planned.object.metadata.namespace}/${instanceOf(planned.object)}`;
    byInstance.set(key, [...(byInstance.get(key) ?? []), planned]);
  }
  const outcomes: ObjectOutcome[] = [];
  const rollouts: RolloutTarget[] = [];
  await forEachLimited([...byInstance.values()], options.concurrency ?? 16, async (planned) => {
    for (const { object, existing: found } of planned) {
      const outcome = await applyOne(client, object, found, options);
      outcomes.push(outcome.outcome);
      options.onProgress?.(describe(outcome.outcome, options.dryRun));
      if (outcome.generation !== undefined && object.kind === "Deployment" && !options.dryRun) {
        rollouts.push({
          namespace: object.metadata.namespace as string,
          name: object.metadata.name,
          generation: outcome.generation,
        });
      }
    }
  });

  if (options.prune) {
    await forEachLimited(plan.prune, options.concurrency ?? 16, async (item) => {
      await deleteObject(client, item, options.dryRun);
      const outcome: ObjectOutcome = {
        kind: item.kind,
        name: item.name,
        namespace: item.namespace,
        action: "pruned",
        changes: [],
      };
      outcomes.push(outcome);
      options.onProgress?.(describe(outcome, options.dryRun));
    });
  }
  return { dryRun: options.dryRun ?? false, objects: sortOutcomes(outcomes), rollouts };
}

/** "Deployment/gpt2 configured (spec.replicas)"; a dry run says what would happen. */
export function describe(outcome: ObjectOutcome, dryRun = false): string {
  const changes =
    outcome.changes.length === 0
      ? ""
      : ` (${outcome.changes.slice(0, 8).join(", ")}${outcome.changes.length > 8 ? `, +${outcome.changes.length - 8} more` : ""})`;
  const verb = dryRun ? `would be ${outcome.action}` : outcome.action;
  return `${outcome.namespace}/${outcome.kind}/${outcome.name} ${verb}${changes}`;
}

function sortOutcomes(outcomes: ObjectOutcome[]): ObjectOutcome[] {
  const order = (kind: string) => RESOURCE_TYPES.findIndex((type) => type.kind === kind);
  return outcomes.sort(
    (a, b) =>
      a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name) || order(a.kind) - order(b.kind),
  );
}

const metadataListAccept =
  "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

interface MetadataItem {
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    resourceVersion: string;
    uid: string;
    managedFields?: Array<{ manager?: string }>;
  };
}

/** Every object of a kind in a namespace, metadata only (names, labels, versions), page by page. */
async function listExisting(
  client: KubeClient,
  kind: string,
  namespace: string,
  rendered: boolean,
): Promise<ExistingObject[]> {
  const type = RESOURCE_TYPES.find((candidate) => candidate.kind === kind);
  if (!type) return [];
  const found: ExistingObject[] = [];
  let continueToken: string | undefined;
  do {
    const response = await client.request<{ metadata?: { continue?: string }; items?: MetadataItem[] }>({
      method: "GET",
      path: resourcePath(type, namespace),
      query: { limit: "500", continue: continueToken },
      accept: metadataListAccept,
      allowStatus: [404],
    });
    if (response.status === 404) {
      // The kind is not served: fatal only when the spec renders it.
      if (!rendered) return [];
      throw new K8sError(
        "BERTH_K8S_CRD_MISSING",
        `the cluster does not serve ${type.apiVersion} ${kind}${
          kind === "ServiceMonitor" || kind === "PrometheusRule"
            ? ": install the Prometheus operator (its CRDs), or set spec.kubernetes.serviceMonitor: false"
            : ""
        }`,
      );
    }
    for (const item of response.body.items ?? []) {
      found.push({
        apiVersion: type.apiVersion,
        kind,
        name: item.metadata.name,
        namespace,
        labels: item.metadata.labels ?? {},
        resourceVersion: item.metadata.resourceVersion,
        uid: item.metadata.uid,
        managers: [
          ...new Set((item.metadata.managedFields ?? []).map((field) => field.manager ?? "").filter(Boolean)),
        ],
      });
    }
    continueToken = response.body.metadata?.continue || undefined;
  } while (continueToken);
  return found;
}

async function applyOne(
  client: KubeClient,
  object: KubeObject,
  existing: ExistingObject | undefined,
  options: ApplyOptions,
): Promise<{ outcome: ObjectOutcome; generation?: number }> {
  const type = resourceTypeOf(object);
  const namespace = object.metadata.namespace as string;
  const path = resourcePath(type, namespace, object.metadata.name);
  const ref = objectRef(object);
  const before =
    options.dryRun && existing
      ? (await client.request({ method: "GET", path, objectRef: ref })).body
      : undefined;
  const patch = (force: boolean) =>
    serverSideApply(client, object, path, {
      fieldManager: options.fieldManager ?? FIELD_MANAGER,
      force,
      dryRun: options.dryRun ?? false,
    });
  let response: Awaited<ReturnType<typeof patch>>;
  try {
    response = await patch(options.forceConflicts ?? false);
  } catch (error) {
    // Fields Berth itself changed imperatively (berth scale) go back to the spec; anyone else's are reported.
    if (!(error instanceof K8sError) || error.code !== "BERTH_K8S_CONFLICT" || !conflictsAreBerths(error))
      throw error;
    response = await patch(true);
  }
  const after = response.body;
  const afterVersion = after.metadata.resourceVersion as string | undefined;
  let action: ObjectAction;
  let changes: string[] = [];
  if (!existing) action = "created";
  else if (options.dryRun) {
    changes = diffObjects(before, after);
    action = changes.length === 0 ? "unchanged" : "configured";
  } else action = afterVersion === existing.resourceVersion ? "unchanged" : "configured";
  const generation =
    object.kind === "Deployment" ? deploymentSchema.safeParse(after).data?.metadata.generation : undefined;
  return {
    outcome: { kind: object.kind, name: object.metadata.name, namespace, action, changes },
    ...(generation === undefined ? {} : { generation }),
  };
}

/**
 * One server-side apply of an object at its URL path: strict field validation (an unknown field is an error,
 * not a silent drop), the given field manager, and dryRun=All when asked. `berth install` applies with it too.
 */
export function serverSideApply(
  client: KubeClient,
  object: KubeObject,
  path: string,
  options: { fieldManager: string; force: boolean; dryRun: boolean },
): Promise<KubeResponse<KubeObject>> {
  return client.request<KubeObject>({
    method: "PATCH",
    path,
    query: {
      fieldManager: options.fieldManager,
      force: String(options.force),
      fieldValidation: "Strict",
      dryRun: options.dryRun ? "All" : undefined,
    },
    body: object,
    contentType: "application/apply-patch+yaml",
    objectRef: objectRef(object),
  });
}

function conflictsAreBerths(error: K8sError): boolean {
  const managers = error.causes.map((cause) => /conflict with "([^"]+)"/.exec(cause.message)?.[1]);
  return (
    managers.length > 0 && managers.every((manager) => manager !== undefined && BERTH_MANAGER.test(manager))
  );
}

async function deleteObject(client: KubeClient, item: ExistingObject, dryRun = false): Promise<void> {
  const type = resourceTypeOf(item);
  await client.request({
    method: "DELETE",
    path: resourcePath(type, item.namespace, item.name),
    // Delete what Berth listed, not a same-named object someone created since. With a body, the API
    // server takes the options from it and ignores query parameters: dryRun belongs here.
    body: {
      kind: "DeleteOptions",
      apiVersion: "v1",
      propagationPolicy: "Background",
      preconditions: { uid: item.uid },
      ...(dryRun ? { dryRun: ["All"] } : {}),
    },
    objectRef: `${item.kind}/${item.name}`,
    allowStatus: [404],
  });
}

/** Berth's objects of the given models (by label), in the given namespace: what `berth delete` removes. */
export async function listInstanceObjects(
  client: KubeClient,
  namespace: string,
  instances: readonly string[],
): Promise<ExistingObject[]> {
  const lists = await Promise.all(
    RESOURCE_TYPES.map((type) => listExisting(client, type.kind, namespace, false)),
  );
  return lists.flat().filter((item) => instances.some((instance) => isOwnedBy(item, instance)));
}

export interface DeleteOutcome {
  kind: string;
  name: string;
  namespace: string;
}

/** Deletes every object Berth created for these models in the namespace, and nothing else. */
export async function deleteInstances(
  client: KubeClient,
  namespace: string,
  instances: readonly string[],
  options: { dryRun?: boolean; onProgress?: (line: string) => void } = {},
): Promise<DeleteOutcome[]> {
  const owned = await listInstanceObjects(client, namespace, instances);
  await forEachLimited(owned, 16, async (item) => {
    await deleteObject(client, item, options.dryRun);
    options.onProgress?.(
      `${namespace}/${item.kind}/${item.name} ${options.dryRun ? "would be deleted" : "deleted"}`,
    );
  });
  return owned.map((item) => ({ kind: item.kind, name: item.name, namespace }));
}

async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  });
  await Promise.all(workers);
}
