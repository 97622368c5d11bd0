// The ModelDeployment custom resource as the operator sees it: where it lives in the API, how a
// live object becomes the same ModelDeployment the spec file gives `berth up` (validated by the
// zod schema, so the two modes can never read a spec differently), and owner references to it.
import { CR_API_VERSION, CRD_KIND, CRD_PLURAL } from "../k8s/crd.js";
import { issueMessage, valueAt } from "../spec/messages.js";
import { type ModelDeployment, modelDeploymentSchema } from "../spec/schema.js";
import type { LiveObject } from "./informer.js";

/** The collection path: one namespace, or all of them. */
export function modelDeploymentsPath(namespace?: string): string {
  const scope = namespace === undefined ? "" : `/namespaces/${encodeURIComponent(namespace)}`;
  return `/apis/${CR_API_VERSION}${scope}/${CRD_PLURAL}`;
}

export function statusPath(namespace: string, name: string): string {
  return `${modelDeploymentsPath(namespace)}/${encodeURIComponent(name)}/status`;
}

/** Annotations kubectl writes for itself: copying them onto every rendered object would be noise. */
const TOOL_ANNOTATIONS = new Set(["kubectl.kubernetes.io/last-applied-configuration"]);

export type SpecReading = { ok: true; deployment: ModelDeployment } | { ok: false; message: string };

/**
 * The resource as a ModelDeployment: the spec exactly as the API server stored it, metadata reduced
 * to what a spec file has. A resource the API server accepted can still fail here (the CRD's schema
 * cannot express every rule the zod schema has): the message names each field, as `berth validate` does.
 */
export function readModelDeployment(resource: LiveObject): SpecReading {
  const { name, namespace, labels, annotations } = resource.metadata;
  const kept = Object.fromEntries(
    Object.entries(annotations ?? {}).filter(([key]) => !TOOL_ANNOTATIONS.has(key)),
  );
  const input = {
    apiVersion: resource.apiVersion ?? CR_API_VERSION,
    kind: resource.kind ?? CRD_KIND,
    metadata: {
      name,
      namespace,
      ...(labels && Object.keys(labels).length > 0 ? { labels } : {}),
      ...(Object.keys(kept).length > 0 ? { annotations: kept } : {}),
    },
    spec: resource.spec ?? {},
  };
  const parsed = modelDeploymentSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const path = issue.path.map((segment) => (typeof segment === "symbol" ? String(segment) : segment));
      return `${path.join(".") || "the resource"}: ${issueMessage(issue, valueAt(input, path))}`;
    });
    return { ok: false, message: `the spec is invalid: ${problems.join("; ")}` };
  }
  const other = parsed.data.spec.kubernetes.namespace;
  if (other !== undefined && other !== namespace) {
    // Owner references cannot cross namespaces: the objects must live beside the resource.
    return {
      ok: false,
      message: `spec.kubernetes.namespace is "${other}" but the ModelDeployment is in "${namespace}": a ModelDeployment's objects are created in its own namespace; remove the field or create the ModelDeployment in "${other}"`,
    };
  }
  return { ok: true, deployment: parsed.data };
}

/** The owner reference every rendered object carries: deleting the resource garbage-collects them. */
export function ownerReference(resource: LiveObject): Record<string, unknown> {
  return {
    apiVersion: CR_API_VERSION,
    kind: CRD_KIND,
    name: resource.metadata.name,
    uid: resource.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}
