// Specs, valid and invalid, that zod and the API server (through the CRD) must judge alike: the drift test in
// test/k8s/crd.test.ts sends each to both. A case names the field both must blame. The two deliberate
// differences are listed apart, each with why, and the test checks they are still exactly that.

export interface CorpusCase {
  name: string;
  /** The CR's spec (what a berth.yaml has under spec:). */
  spec: Record<string, unknown>;
  /** metadata.name; default "corpus". */
  metadataName?: string;
  /** The field both refuse ("spec.replicas.max"); undefined: both accept. */
  field?: string;
}

const source = "hf://openai-community/gpt2";
const model = { source };

export const CORPUS: readonly CorpusCase[] = [
  { name: "the smallest spec", spec: { model } },
  { name: "a local file path", spec: { model: { source: "./models/gpt2.gguf" } } },
  {
    name: "replicas with initial and desired inside min..max",
    spec: { model, replicas: { min: 0, max: 4, initial: 0, desired: 3 } },
  },
  {
    name: "durations in every form parseDuration reads",
    spec: {
      model,
      autoscaling: { stableWindow: "1h30m", panicWindow: "90", scaleDownDelay: "1.5m", idleToZero: "250ms" },
    },
  },
  { name: "cpu as an integer and memory in Mi", spec: { model, resources: { cpu: 4, memory: "512Mi" } } },
  { name: "cpu in millicores", spec: { model, resources: { cpu: "500m" } } },
  { name: "a shared model cache", spec: { model: { source, cache: { claimName: "models", size: "20Gi" } } } },
  { name: "ingress with a path", spec: { model, ingress: { host: "gpt2.example.com", path: "/v1" } } },
  { name: "no model", spec: { replicas: { min: 1 } }, field: "spec.model" },
  { name: "min > max", spec: { model, replicas: { min: 3, max: 2 } }, field: "spec.replicas.max" },
  { name: "max below the default min", spec: { model, replicas: { max: 0 } }, field: "spec.replicas.max" },
  {
    name: "initial above max",
    spec: { model, replicas: { min: 1, max: 4, initial: 5 } },
    field: "spec.replicas.initial",
  },
  {
    name: "desired below min",
    spec: { model, replicas: { min: 2, max: 4, desired: 1 } },
    field: "spec.replicas.desired",
  },
  {
    name: "an unknown field",
    spec: { model, replicas: { min: 1, maximum: 3 } },
    field: "spec.replicas.maximum",
  },
  { name: "an unknown top-level field", spec: { model, gpu: true }, field: "spec.gpu" },
  { name: "a wrong type", spec: { model, replicas: { max: "four" } }, field: "spec.replicas.max" },
  {
    name: "a fraction where an integer goes",
    spec: { model, engine: { parallel: 2.5 } },
    field: "spec.engine.parallel",
  },
  { name: "below a minimum", spec: { model: { source, contextSize: 32 } }, field: "spec.model.contextSize" },
  {
    name: "zero where a positive number goes",
    spec: { model, autoscaling: { targetInFlight: 0 } },
    field: "spec.autoscaling.targetInFlight",
  },
  {
    name: "an unknown enum value",
    spec: { model, service: { type: "ExternalName" } },
    field: "spec.service.type",
  },
  { name: "an unknown engine", spec: { model, engine: { kind: "vllm" } }, field: "spec.engine.kind" },
  {
    name: "not a duration",
    spec: { model, autoscaling: { stableWindow: "soon" } },
    field: "spec.autoscaling.stableWindow",
  },
  {
    name: "panicWindow longer than stableWindow",
    spec: { model, autoscaling: { stableWindow: "1m", panicWindow: "2m" } },
    field: "spec.autoscaling.panicWindow",
  },
  {
    name: "not a memory quantity",
    spec: { model, resources: { memory: "4GB" } },
    field: "spec.resources.memory",
  },
  { name: "not a CPU quantity", spec: { model, resources: { cpu: "two" } }, field: "spec.resources.cpu" },
  { name: "a negative CPU count", spec: { model, resources: { cpu: -1 } }, field: "spec.resources.cpu" },
  {
    name: "an unknown source scheme",
    spec: { model: { source: "ftp://host/m.gguf" } },
    field: "spec.model.source",
  },
  { name: "an empty source", spec: { model: { source: "" } }, field: "spec.model.source" },
  {
    name: "a source with spaces around",
    spec: { model: { source: ` ${source}` } },
    field: "spec.model.source",
  },
  {
    name: "a cache and a volume claim",
    spec: { model: { source, cache: { claimName: "models" } }, kubernetes: { modelVolumeClaim: "weights" } },
    field: "spec.model.cache",
  },
  {
    name: "an ingress path without /",
    spec: { model, ingress: { host: "a.example.com", path: "v1" } },
    field: "spec.ingress.path",
  },
  {
    name: "an ingress without host",
    spec: { model, ingress: { className: "nginx" } },
    field: "spec.ingress.host",
  },
  {
    name: "api keys in the spec",
    spec: { model, auth: { apiKeysFrom: "sk-123" } },
    field: "spec.auth.apiKeysFrom",
  },
  {
    name: "a name too long for the objects it prefixes",
    spec: { model },
    metadataName: "a-model-deployment-name-that-is-longer-than-fifty-three-chars",
    field: "metadata.name",
  },
];

/** Where the CRD and zod judge differently on purpose: what each says, and why. */
export interface KnownDifference extends CorpusCase {
  zodField?: string;
  apiField?: string;
  why: string;
}

export const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    name: "a hub name with '--' (the model store's parser, not the CRD, checks a scheme's parts)",
    spec: { model: { source: "hf://org--x/repo" } },
    zodField: "spec.model.source",
    why: "the operator parses every CR with zod and reports Degraded (InvalidSpec) naming the field",
  },
  {
    name: "cpu as a YAML float",
    spec: { model, resources: { cpu: 0.5 } },
    apiField: "spec.resources.cpu",
    why: 'a structural schema has int-or-string but not number-or-string; quote it (cpu: "0.5") in a CR',
  },
];
