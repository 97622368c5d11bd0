// `berth install` / `berth uninstall` against a cluster: server-side apply of installObjects() (apply.ts's
// serverSideApply, field manager berth-install), a wait for the CRD to be Established, and removal of exactly
// those objects — refused while ModelDeployments exist, since deleting the CRD deletes them and all they own.
import { serverSideApply } from "./apply.js";
import type { KubeClient } from "./client.js";
import { CRD_GROUP, CRD_KIND, CRD_NAME, CRD_PLURAL, CRD_VERSION } from "./crd.js";
import { K8sError } from "./errors.js";
import { INSTALL_NAMESPACE, type InstallOptions, installObjects } from "./install.js";
import { type KubeObject, objectRef, type ResourceType, resourcePath } from "./objects.js";

export const INSTALL_FIELD_MANAGER = "berth-install";
const DEFAULT_TIMEOUT_MS = 120_000;

const RBAC = "rbac.authorization.k8s.io/v1";
/** The kinds installObjects() produces: where each lives in the API (no discovery requests needed). */
const INSTALL_TYPES: readonly ResourceType[] = [
  {
    kind: "CustomResourceDefinition",
    apiVersion: "apiextensions.k8s.io/v1",
    plural: "customresourcedefinitions",
    namespaced: false,
  },
  { kind: "Namespace", apiVersion: "v1", plural: "namespaces", namespaced: false },
  { kind: "ServiceAccount", apiVersion: "v1", plural: "serviceaccounts", namespaced: true },
  { kind: "ClusterRole", apiVersion: RBAC, plural: "clusterroles", namespaced: false },
  { kind: "ClusterRoleBinding", apiVersion: RBAC, plural: "clusterrolebindings", namespaced: false },
  { kind: "Role", apiVersion: RBAC, plural: "roles", namespaced: true },
  { kind: "RoleBinding", apiVersion: RBAC, plural: "rolebindings", namespaced: true },
  { kind: "Service", apiVersion: "v1", plural: "services", namespaced: true },
  { kind: "Deployment", apiVersion: "apps/v1", plural: "deployments", namespaced: true },
];

function pathOf(object: KubeObject): string {
  const type = INSTALL_TYPES.find((candidate) => candidate.kind === object.kind);
  if (!type) throw new Error(`berth install does not manage ${object.kind}`);
  return resourcePath(type, object.metadata.namespace ?? "", object.metadata.name);
}

/** "Namespace/berth-system", "berth-system/Deployment/berth-operator": how install names objects. */
export function installRef(object: { kind: string; name: string; namespace?: string | undefined }): string {
  return `${object.namespace ? `${object.namespace}/` : ""}${object.kind}/${object.name}`;
}

const refOf = (object: KubeObject) =>
  installRef({ kind: object.kind, name: object.metadata.name, namespace: object.metadata.namespace });

export interface InstalledObject {
  kind: string;
  name: string;
  namespace?: string;
  action: "created" | "configured" | "unchanged" | "kept";
}

export interface RunOptions {
  timeoutMs?: number;
  onProgress?: (line: string) => void;
}

interface Metadata {
  metadata: { resourceVersion?: string; managedFields?: Array<{ manager?: string }> };
}

export async function installBerth(
  client: KubeClient,
  options: InstallOptions & RunOptions = {},
): Promise<InstalledObject[]> {
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const done: InstalledObject[] = [];
  for (const object of installObjects(options)) {
    const path = pathOf(object);
    const before = await client.request<Metadata>({ method: "GET", path, allowStatus: [404] });
    const exists = before.status !== 404;
    const entry = {
      kind: object.kind,
      name: object.metadata.name,
      ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}),
    };
    // A namespace that was there before is someone else's: use it, never label it as Berth's or delete it later.
    if (object.kind === "Namespace" && exists && !isInstallManaged(before.body)) {
      done.push({ ...entry, action: "kept" });
      options.onProgress?.(`${refOf(object)} exists (kept; uninstall leaves it)`);
      continue;
    }
    const after = await serverSideApply(client, object, path, {
      fieldManager: INSTALL_FIELD_MANAGER,
      force: false,
      dryRun: false,
    });
    const action = !exists
      ? "created"
      : after.body.metadata.resourceVersion === before.body.metadata.resourceVersion
        ? "unchanged"
        : "configured";
    done.push({ ...entry, action });
    options.onProgress?.(`${refOf(object)} ${action}`);
    if (object.kind === "CustomResourceDefinition") {
      await waitForCrdEstablished(client, deadline);
      options.onProgress?.(
        `${refOf(object)} established: ${CRD_PLURAL}.${CRD_GROUP}/${CRD_VERSION} is served`,
      );
    }
  }
  return done;
}

function isInstallManaged(object: Metadata): boolean {
  return (object.metadata.managedFields ?? []).some((field) => field.manager === INSTALL_FIELD_MANAGER);
}

interface CrdJson {
  metadata: { resourceVersion?: string };
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> };
}

/** Resolves when the API server serves the CRD's resource; throws when its names are refused or time runs out. */
async function waitForCrdEstablished(client: KubeClient, deadline: number): Promise<void> {
  const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions`;
  const verdict = (crd: CrdJson): boolean => {
    const conditions = crd.status?.conditions ?? [];
    const names = conditions.find((condition) => condition.type === "NamesAccepted");
    if (names?.status === "False") {
      throw new K8sError(
        "BERTH_K8S_REJECTED",
        `CustomResourceDefinition/${CRD_NAME}: names not accepted: ${names.message ?? names.reason}`,
      );
    }
    return conditions.some((condition) => condition.type === "Established" && condition.status === "True");
  };
  const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
  while (!signal.aborted) {
    const current = await client.request<CrdJson>({ method: "GET", path: `${path}/${CRD_NAME}` });
    if (verdict(current.body)) return;
    let established = false;
    await client.watch(
      path,
      { fieldSelector: `metadata.name=${CRD_NAME}`, resourceVersion: current.body.metadata.resourceVersion },
      (event) => {
        established = verdict(event.object as unknown as CrdJson);
        return established;
      },
      signal,
    );
    if (established) return;
  }
  throw new K8sError("BERTH_K8S_TIMEOUT", `CustomResourceDefinition/${CRD_NAME} was not Established in time`);
}

export interface UninstallOptions extends RunOptions {
  namespace?: string;
  /** Uninstall even while ModelDeployments exist (they go with the CRD, and what they own with them). */
  force?: boolean;
}

export interface UninstallResult {
  removed: Array<{ kind: string; name: string; namespace?: string }>;
  /** ModelDeployments that existed ("namespace/name"); with --force they were deleted with the CRD. */
  modelDeployments: string[];
}

export async function uninstallBerth(
  client: KubeClient,
  options: UninstallOptions = {},
): Promise<UninstallResult> {
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const namespace = options.namespace ?? INSTALL_NAMESPACE;
  const modelDeployments = await listModelDeployments(client);
  if (modelDeployments.length > 0 && !options.force) {
    const shown = modelDeployments.slice(0, 5).join(", ");
    const more = modelDeployments.length > 5 ? ` and ${modelDeployments.length - 5} more` : "";
    throw new K8sError(
      "BERTH_K8S_IN_USE",
      `${modelDeployments.length === 1 ? `1 ${CRD_KIND} exists` : `${modelDeployments.length} ${CRD_KIND}s exist`} (${shown}${more}); ` +
        "removing the CRD would delete them and every object the operator made for them. Nothing was removed. " +
        `Delete them first (kubectl delete ${CRD_PLURAL} --all -A) or run berth uninstall --force.`,
    );
  }
  const removed: UninstallResult["removed"] = [];
  // Reverse apply order: the controller stops first (it would recreate what it owns), the CRD goes last.
  for (const object of installObjects({ namespace }).reverse()) {
    const path = pathOf(object);
    if (object.kind === "Namespace") {
      const found = await client.request<Metadata>({ method: "GET", path, allowStatus: [404] });
      if (found.status === 404) continue;
      if (!isInstallManaged(found.body)) {
        options.onProgress?.(`${refOf(object)} kept (berth install did not create it)`);
        continue;
      }
    }
    const response = await client.request({
      method: "DELETE",
      path,
      body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" },
      objectRef: objectRef(object),
      allowStatus: [404],
    });
    if (response.status === 404) continue;
    removed.push({
      kind: object.kind,
      name: object.metadata.name,
      ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}),
    });
    options.onProgress?.(`${refOf(object)} deleted`);
  }
  // The namespace and the CRD finish deleting asynchronously (finalizers): done means gone.
  for (const object of installObjects({ namespace })) {
    if (object.kind !== "Namespace" && object.kind !== "CustomResourceDefinition") continue;
    if (!removed.some((item) => item.kind === object.kind)) continue;
    await waitGone(client, object, deadline);
    options.onProgress?.(`${refOf(object)} gone`);
  }
  return { removed, modelDeployments };
}

async function listModelDeployments(client: KubeClient): Promise<string[]> {
  const response = await client.request<{
    items?: Array<{ metadata: { name: string; namespace?: string } }>;
  }>({
    method: "GET",
    path: `/apis/${CRD_GROUP}/${CRD_VERSION}/${CRD_PLURAL}`,
    accept: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
    allowStatus: [404],
  });
  if (response.status === 404) return [];
  return (response.body.items ?? []).map((item) => `${item.metadata.namespace}/${item.metadata.name}`);
}

/** Resolves once GET answers 404, watching the object rather than polling. */
async function waitGone(client: KubeClient, object: KubeObject, deadline: number): Promise<void> {
  const path = pathOf(object);
  const collection = path.slice(0, path.lastIndexOf("/"));
  const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
  while (!signal.aborted) {
    const current = await client.request<Metadata>({ method: "GET", path, allowStatus: [404] });
    if (current.status === 404) return;
    let gone = false;
    await client.watch(
      collection,
      {
        fieldSelector: `metadata.name=${object.metadata.name}`,
        resourceVersion: current.body.metadata.resourceVersion,
      },
      (event) => {
        gone = event.type === "DELETED";
        return gone;
      },
      signal,
    );
    if (gone) return;
  }
  throw new K8sError(
    "BERTH_K8S_TIMEOUT",
    `${refOf(object)} is still being deleted (finalizers); check it with kubectl describe`,
  );
}
