// What a deploy will do, decided before any write: which rendered objects exist, which names belong
// to someone else (never taken over), what to prune, and what changed between two versions of an object.
// Pure functions over rendered objects and the metadata the API server listed.
import { type KubeObject, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY, objectRef } from "./objects.js";

/** An object as the metadata-only list shows it. */
export interface ExistingObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  resourceVersion: string;
  uid: string;
  /** Field managers (managedFields[].manager), for messages about who owns what. */
  managers: string[];
}

export interface PlannedApply {
  object: KubeObject;
  /** The live object Berth created earlier, when there is one. */
  existing?: ExistingObject;
}

export interface Plan {
  apply: PlannedApply[];
  /** Berth's objects of these instances that the spec no longer renders (deleted only with --prune). */
  prune: ExistingObject[];
  /** Live objects with a name Berth renders that Berth did not create for this instance. */
  notOwned: Array<{ object: KubeObject; existing: ExistingObject }>;
}

const typeKey = (apiVersion: string, kind: string, namespace: string | undefined, name: string) =>
  `${apiVersion}|${kind}|${namespace ?? ""}|${name}`;

/** Berth created it for this model: both labels, which render always sets and users cannot override. */
export function isOwnedBy(existing: Pick<ExistingObject, "labels">, instance: string): boolean {
  return existing.labels[LABEL_MANAGED_BY] === MANAGED_BY && existing.labels[LABEL_INSTANCE] === instance;
}

export function instanceOf(object: KubeObject): string {
  const instance = object.metadata.labels?.[LABEL_INSTANCE];
  if (!instance)
    throw new Error(`${objectRef(object)} has no ${LABEL_INSTANCE} label; was it rendered by Berth?`);
  return instance;
}

export function planApply(rendered: readonly KubeObject[], existing: readonly ExistingObject[]): Plan {
  const live = new Map(
    existing.map((item) => [typeKey(item.apiVersion, item.kind, item.namespace, item.name), item]),
  );
  const renderedKeys = new Set<string>();
  const instances = new Set<string>();
  const plan: Plan = { apply: [], prune: [], notOwned: [] };
  for (const object of rendered) {
    const instance = instanceOf(object);
    instances.add(instance);
    const key = typeKey(object.apiVersion, object.kind, object.metadata.namespace, object.metadata.name);
    renderedKeys.add(key);
    const found = live.get(key);
    if (found && !isOwnedBy(found, instance)) plan.notOwned.push({ object, existing: found });
    else plan.apply.push(found ? { object, existing: found } : { object });
  }
  for (const [key, item] of live) {
    if (renderedKeys.has(key)) continue;
    const instance = item.labels[LABEL_INSTANCE];
    if (instance !== undefined && instances.has(instance) && isOwnedBy(item, instance)) plan.prune.push(item);
  }
  return plan;
}

/** Fields the API server maintains itself: differences there are not changes anyone made. */
const SERVER_FIELDS = new Set([
  "metadata.managedFields",
  "metadata.resourceVersion",
  "metadata.generation",
  "metadata.uid",
  "metadata.creationTimestamp",
  "metadata.selfLink",
  "metadata.annotations.deployment.kubernetes.io/revision",
  "status",
]);

/** Leaf paths that differ ("spec.replicas", "spec.template.spec.containers[0].image"), sorted. */
export function diffObjects(before: unknown, after: unknown): string[] {
  const changes: string[] = [];
  walk(before, after, "", changes);
  return changes.sort();
}

function walk(before: unknown, after: unknown, path: string, changes: string[]): void {
  if (SERVER_FIELDS.has(path)) return;
  if (Array.isArray(before) && Array.isArray(after)) {
    if (before.length !== after.length) {
      changes.push(path);
      return;
    }
    for (const [index, item] of before.entries()) walk(item, after[index], `${path}[${index}]`, changes);
    return;
  }
  if (isRecord(before) && isRecord(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const key of keys) walk(before[key], after[key], path ? `${path}.${key}` : key, changes);
    return;
  }
  if (before !== after) changes.push(path);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
