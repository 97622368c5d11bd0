// Picking the replica for one request: least-load (power of two choices), round-robin, and
// prefix-hash (consistent hashing with bounded loads). Pure: randomness and counters come in as inputs.
import type { UpstreamState } from "./directory.js";

export type RoutingStrategy = "least-load" | "prefix-hash" | "round-robin";

export interface Candidate {
  id: string;
  state: UpstreamState;
  /** Requests the gateway has in flight on this upstream now. */
  inFlight: number;
  /** Recently failed (refused, hung, answered 503): skipped unless nothing else is left. */
  ejected: boolean;
}

export interface PickOptions {
  strategy: RoutingStrategy;
  /** Uniform in [0, 1): the random choices of least-load (and its tie-breaks). */
  random: () => number;
  /**
   * least-load: how many random candidates to compare: 2 is power of two choices, as many as there
   * are candidates is the exact least-loaded one (ties broken at random). Default: see pickLeastLoad.
   */
  choices?: number;
  /** How many picks this model had before; round-robin takes `sequence mod n`. */
  sequence: number;
  /** prefix-hash: the prompt's leading characters; without one prefix-hash falls back to least-load. */
  prefix?: string;
  /** prefix-hash: an upstream takes the request only while its load ≤ loadFactor × average. */
  loadFactor: number;
  /** Upstreams this request already tried (retries go elsewhere). */
  exclude?: ReadonlySet<string>;
  /** Builds (or returns a cached) ring over the given ids; default: build one. */
  ringOf?: (ids: readonly string[]) => HashRing;
}

/**
 * The upstreams a request may go to: ready, not already tried, and not ejected — unless every one
 * left is ejected, then all of them (as Envoy's panic mode: an ejection can be a false alarm, and a
 * possibly-bad replica beats certainly no replica).
 */
export function eligibleCandidates(
  candidates: readonly Candidate[],
  exclude: ReadonlySet<string> = new Set(),
): Candidate[] {
  const ready = candidates.filter((candidate) => candidate.state === "ready" && !exclude.has(candidate.id));
  const healthy = ready.filter((candidate) => !candidate.ejected);
  return healthy.length > 0 ? healthy : ready;
}

export function pickUpstream(candidates: readonly Candidate[], options: PickOptions): Candidate | undefined {
  const eligible = eligibleCandidates(candidates, options.exclude);
  if (eligible.length <= 1) return eligible[0];
  switch (options.strategy) {
    case "round-robin":
      return pickRoundRobin(eligible, options.sequence);
    case "prefix-hash": {
      if (options.prefix === undefined) return pickLeastLoad(eligible, options.random, options.choices);
      const ids = eligible.map((candidate) => candidate.id);
      const ring = options.ringOf ? options.ringOf(ids) : buildHashRing(ids);
      return pickPrefixHash(eligible, ring, options.prefix, options.loadFactor);
    }
    default:
      return pickLeastLoad(eligible, options.random);
  }
}

/**
 * Up to this many replicas, least-load compares all of them; beyond, two random ones. Power of two
 * choices earns its keep with many replicas (O(1), and its randomness keeps balancers that act on
 * stale counts from herding onto one replica). With few replicas a scan costs nothing, while two
 * random choices often miss the one idle replica (4 replicas, one idle: half the time). The gateway
 * counts its own in-flight requests exactly, so nothing is stale. bench:gateway measures both.
 */
export const EXACT_LEAST_LOAD_UP_TO = 8;

/**
 * Least outstanding requests among `choices` distinct random candidates (2: power of two choices;
 * n or more: the exact minimum). Equal loads keep the first drawn, so ties fall at random.
 */
export function pickLeastLoad(
  eligible: readonly Candidate[],
  random: () => number,
  choices?: number,
): Candidate | undefined {
  const count = eligible.length;
  if (count <= 1) return eligible[0];
  choices ??= count <= EXACT_LEAST_LOAD_UP_TO ? count : 2;
  if (choices >= count) {
    let least = Number.POSITIVE_INFINITY;
    const tied: Candidate[] = [];
    for (const candidate of eligible) {
      if (candidate.inFlight < least) {
        least = candidate.inFlight;
        tied.length = 0;
      }
      if (candidate.inFlight === least) tied.push(candidate);
    }
    return tied[Math.min(tied.length - 1, Math.floor(random() * tied.length))];
  }
  // A partial Fisher-Yates shuffle draws `choices` distinct indices.
  const indices = Array.from({ length: count }, (_, index) => index);
  let best: Candidate | undefined;
  for (let draw = 0; draw < Math.max(1, choices); draw++) {
    const pick = draw + Math.min(count - draw - 1, Math.floor(random() * (count - draw)));
    [indices[draw], indices[pick]] = [indices[pick]!, indices[draw]!];
    const candidate = eligible[indices[draw]!]!;
    if (!best || candidate.inFlight < best.inFlight) best = candidate;
  }
  return best;
}

export function pickRoundRobin(eligible: readonly Candidate[], sequence: number): Candidate | undefined {
  if (eligible.length === 0) return undefined;
  const index = ((Math.floor(sequence) % eligible.length) + eligible.length) % eligible.length;
  return eligible[index];
}

/** A consistent-hash ring: `points` sorted ascending, `owners[i]` the id owning `points[i]`. */
export interface HashRing {
  points: Uint32Array;
  owners: string[];
}

/** Virtual nodes per upstream: enough that 2-10 upstreams split the ring within a few percent. */
export const RING_REPLICATION = 160;

export function buildHashRing(ids: readonly string[], replication = RING_REPLICATION): HashRing {
  const entries: Array<{ point: number; owner: string }> = [];
  for (const id of ids) {
    for (let replica = 0; replica < replication; replica++) {
      entries.push({ point: hashString(`${id}#${replica}`), owner: id });
    }
  }
  // Ties (vanishingly rare) are broken by owner so the ring does not depend on input order.
  entries.sort((x, y) => x.point - y.point || (x.owner < y.owner ? -1 : x.owner > y.owner ? 1 : 0));
  return { points: Uint32Array.from(entries, (entry) => entry.point), owners: entries.map((e) => e.owner) };
}

/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam; KubeAI's PrefixHash):
 * walk the ring clockwise from the prefix's hash and take the first upstream whose load, counting
 * this request, stays within the capacity ⌈loadFactor × average load⌉ (the average also counting
 * it). The ceiling is the paper's; KubeAI leaves it out, which with few replicas and few requests
 * in flight sends a prefix away from its replica whenever that replica has anything in flight
 * (4 replicas, 3 in flight: only an idle replica qualifies). If none qualifies, the first one.
 */
export function pickPrefixHash(
  eligible: readonly Candidate[],
  ring: HashRing,
  prefix: string,
  loadFactor: number,
): Candidate | undefined {
  if (eligible.length === 0 || ring.points.length === 0) return eligible[0];
  const byId = new Map(eligible.map((candidate) => [candidate.id, candidate]));
  let totalLoad = 0;
  for (const candidate of eligible) totalLoad += candidate.inFlight;
  const capacity = Math.ceil(((totalLoad + 1) / eligible.length) * loadFactor - 1e-9);
  const start = ringIndexOf(ring, hashString(prefix));
  let first: Candidate | undefined;
  const seen = new Set<string>();
  for (let step = 0; step < ring.points.length && seen.size < byId.size; step++) {
    const owner = ring.owners[(start + step) % ring.points.length]!;
    if (seen.has(owner)) continue;
    seen.add(owner);
    const candidate = byId.get(owner);
    if (!candidate) continue;
    first ??= candidate;
    if (candidate.inFlight + 1 <= capacity) return candidate;
  }
  return first ?? eligible[0];
}

/** Index of the first ring point ≥ hash, wrapping to 0. */
export function ringIndexOf(ring: HashRing, hash: number): number {
  let low = 0;
  let high = ring.points.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (ring.points[middle]! < hash) low = middle + 1;
    else high = middle;
  }
  return low === ring.points.length ? 0 : low;
}

/** FNV-1a over UTF-16 code units, then murmur3's finalizer so similar keys spread over the ring. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
