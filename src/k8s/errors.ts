// Errors of the Kubernetes boundary: every failure a user can act on gets a stable code and a
// message naming what to fix (the verb and resource RBAC denied, the field the API server rejected).
import { z } from "zod";

export type K8sErrorCode =
  /** No kubeconfig, an unknown --context, or a kubeconfig Berth cannot use. */
  | "BERTH_K8S_CONFIG"
  /** The API server did not answer (connection refused, DNS, TLS, timeout). */
  | "BERTH_K8S_UNREACHABLE"
  /** 401: the credentials in the kubeconfig were not accepted. */
  | "BERTH_K8S_UNAUTHORIZED"
  /** 403: RBAC denied a verb on a resource. */
  | "BERTH_K8S_FORBIDDEN"
  /** The cluster does not serve a kind the spec needs (ServiceMonitor without the Prometheus operator). */
  | "BERTH_K8S_CRD_MISSING"
  | "BERTH_K8S_NAMESPACE_NOT_FOUND"
  /** 400/422: the API server rejected an object; causes carry the field paths. */
  | "BERTH_K8S_REJECTED"
  /** 409: server-side apply found fields that another field manager owns. */
  | "BERTH_K8S_CONFLICT"
  /** An object with a name Berth renders exists, and Berth did not create it. */
  | "BERTH_K8S_NOT_OWNED"
  /** `berth uninstall` while ModelDeployments exist (deleting the CRD would delete them): --force. */
  | "BERTH_K8S_IN_USE"
  /** A wait (CRD Established, an object gone) passed its deadline. */
  | "BERTH_K8S_TIMEOUT"
  | "BERTH_K8S_ROLLOUT_TIMEOUT"
  /** The Deployment controller gave up (ProgressDeadlineExceeded). */
  | "BERTH_K8S_ROLLOUT_FAILED"
  /** Any other answer of the API server. */
  | "BERTH_K8S_API";

export interface K8sCause {
  /** The field path as the API server names it ("spec.template.spec.containers[0].image"). */
  field?: string;
  message: string;
  reason?: string;
}

export class K8sError extends Error {
  constructor(
    readonly code: K8sErrorCode,
    message: string,
    readonly details: { causes?: K8sCause[]; status?: number; object?: string } = {},
  ) {
    super(message);
    this.name = "K8sError";
  }

  get causes(): K8sCause[] {
    return this.details.causes ?? [];
  }
}

/** The Status object the API server answers errors with. */
export const statusSchema = z.looseObject({
  kind: z.literal("Status").optional(),
  status: z.string().optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
  details: z
    .looseObject({
      name: z.string().optional(),
      group: z.string().optional(),
      kind: z.string().optional(),
      causes: z
        .array(
          z.looseObject({
            reason: z.string().optional(),
            message: z.string().optional(),
            field: z.string().optional(),
          }),
        )
        .optional(),
    })
    .optional(),
});
export type KubeStatus = z.output<typeof statusSchema>;

/** A non-2xx answer, before it is given a meaning (see errorFromResponse). */
export interface FailedRequest {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

/** The verb RBAC checks for a request: what a Role must grant. */
export function verbOf(method: string, path: string, query: Record<string, string | undefined> = {}): string {
  if (query.watch === "true" || query.watch === "1") return "watch";
  switch (method) {
    case "GET":
      return resourceNameOf(path) === undefined ? "list" : "get";
    case "POST":
      return "create";
    case "PUT":
      return "update";
    case "PATCH":
      return "patch";
    case "DELETE":
      return "delete";
    default:
      return method.toLowerCase();
  }
}

/** Parses /api(s)/.../namespaces/NS/PLURAL[/NAME[/SUB]] into its parts (undefined parts when absent). */
export function parseResourcePath(path: string): {
  group: string;
  plural?: string;
  namespace?: string;
  name?: string;
  subresource?: string;
} {
  const segments = path.split("?")[0]?.split("/").filter(Boolean).map(decodeURIComponent) ?? [];
  const isCore = segments[0] === "api";
  const rest = segments.slice(isCore ? 2 : 3);
  const group = isCore ? "" : (segments[1] ?? "");
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest.splice(0, 2);
  }
  return { group, plural: rest[0], namespace, name: rest[1], subresource: rest[2] };
}

function resourceNameOf(path: string): string | undefined {
  return parseResourcePath(path).name;
}

/** Turns an API server error answer into an error that says what to do. */
export function errorFromResponse(failed: FailedRequest, objectRef?: string): K8sError {
  const parsed = statusSchema.safeParse(failed.body);
  const status: KubeStatus = parsed.success ? parsed.data : { message: String(failed.body).slice(0, 500) };
  const message = status.message ?? `HTTP ${failed.status}`;
  const where = parseResourcePath(failed.path);
  const subject = objectRef ?? (where.name ? `${where.plural}/${where.name}` : (where.plural ?? failed.path));
  const causes: K8sCause[] = (status.details?.causes ?? []).map((cause) => ({
    field: cause.field,
    message: cause.message ?? "",
    reason: cause.reason,
  }));
  const details = { causes, status: failed.status, object: objectRef };

  switch (failed.status) {
    case 401:
      return new K8sError(
        "BERTH_K8S_UNAUTHORIZED",
        `the API server did not accept the kubeconfig's credentials (401): ${message}`,
        details,
      );
    case 403: {
      // "User "x" cannot patch resource "deployments" in API group "apps" in the namespace "ns""
      const denied = /cannot (\S+) resource "([^"]+)"(?: in API group "([^"]*)")?/.exec(message);
      const verb = denied?.[1] ?? verbOf(failed.method, failed.path);
      const plural = denied?.[2] ?? where.plural ?? "?";
      const group = denied?.[3] ?? where.group;
      const resource = group ? `${plural}.${group}` : plural;
      const user = /User "([^"]+)"/.exec(message)?.[1];
      const scope = where.namespace ? ` in namespace "${where.namespace}"` : "";
      return new K8sError(
        "BERTH_K8S_FORBIDDEN",
        `forbidden: ${user ? `${user} ` : ""}may not ${verb} ${resource}${scope} (needed for ${subject}); ` +
          `grant the verb "${verb}" on resource "${plural}" in API group "${group}" with a Role or ClusterRole`,
        { ...details, causes: [{ message, reason: "Forbidden", field: `${verb} ${resource}` }] },
      );
    }
    case 404: {
      if (status.details?.kind === "namespaces") {
        return new K8sError(
          "BERTH_K8S_NAMESPACE_NOT_FOUND",
          `namespace "${status.details.name ?? where.namespace}" does not exist; create it (kubectl create namespace ${status.details.name ?? where.namespace}) or pick another with --namespace`,
          details,
        );
      }
      return new K8sError("BERTH_K8S_API", `${subject}: not found (${message})`, details);
    }
    case 409: {
      if (causes.some((cause) => cause.reason === "FieldManagerConflict")) {
        const fields = causes.map((cause) => `${cause.field}: ${cause.message}`).join("; ");
        return new K8sError(
          "BERTH_K8S_CONFLICT",
          `${subject}: fields Berth sets are managed by someone else (${fields}); ` +
            "Berth does not take them over silently: undo the other change, or rerun with --force-conflicts",
          details,
        );
      }
      return new K8sError("BERTH_K8S_API", `${subject}: conflict: ${message}`, details);
    }
    case 400:
    case 422: {
      const fields = causes.length > 0 ? causes.map(formatCause).join("; ") : message;
      return new K8sError("BERTH_K8S_REJECTED", `the API server rejected ${subject}: ${fields}`, {
        ...details,
        causes: causes.length > 0 ? causes : causesFromMessage(message),
      });
    }
    default:
      return new K8sError(
        "BERTH_K8S_API",
        `${failed.method} ${failed.path}: ${failed.status} ${message}`,
        details,
      );
  }
}

function formatCause(cause: K8sCause): string {
  return cause.field ? `${cause.field}: ${cause.message}` : cause.message;
}

/** Strict field validation names unknown fields only in the message: `unknown field "spec.foo"`. */
function causesFromMessage(message: string): K8sCause[] {
  const unknown = [...message.matchAll(/unknown field "([^"]+)"/g)].map((match) => ({
    field: match[1],
    message: "unknown field",
    reason: "FieldValueInvalid",
  }));
  return unknown.length > 0 ? unknown : [{ message }];
}

/** A transport failure (no HTTP answer at all). */
export function unreachableError(server: string, error: unknown): K8sError {
  const cause = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = cause.cause?.code ?? cause.code;
  const reason = cause.cause?.message ?? cause.message ?? String(error);
  const hint =
    code === "ECONNREFUSED"
      ? "nothing listens there; is the cluster running and the kube context right?"
      : code === "ENOTFOUND" || code === "EAI_AGAIN"
        ? "the host name does not resolve"
        : /certificate|self[- ]signed|SSL|TLS/i.test(reason)
          ? "TLS failed; check the kubeconfig's certificate-authority"
          : "check the network and the kube context";
  return new K8sError(
    "BERTH_K8S_UNREACHABLE",
    `cannot reach the Kubernetes API server at ${server}: ${code ? `${code}: ` : ""}${reason} (${hint})`,
  );
}
