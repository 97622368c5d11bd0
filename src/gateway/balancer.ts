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
  /** Uniform in [0, 1): the two choices of least-load. */
  random: () => number;
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
      if (options.prefix === undefined) return pickLeastLoad(eligible, options.random);
      const ids = eligible.map((candidate) => candidate.id);
      const ring = options.ringOf ? options.ringOf(ids) : buildHashRing(ids);
      return pickPrefixHash(eligible, ring, options.prefix, options.loadFactor);
    }
    default:
      return pickLeastLoad(eligible, options.random);
  }
}

/** Power of two choices: two distinct random candidates, the one with fewer requests in flight wins. */
export function pickLeastLoad(eligible: readonly Candidate[], random: () => number): Candidate | undefined {
  if (eligible.length <= 1) return eligible[0];
  const first = Math.min(eligible.length - 1, Math.floor(random() * eligible.length));
  // The second choice is drawn from the other n-1 candidates, so the two are always distinct.
  let second = Math.min(eligible.length - 2, Math.floor(random() * (eligible.length - 1)));
  if (second >= first) second += 1;
  const a = eligible[first]!;
  const b = eligible[second]!;
  return b.inFlight < a.inFlight ? b : a;
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
 * Consistent hashing with bounded loads (Mirrokni et al.; KubeAI's PrefixHash): walk the ring
 * clockwise from the prefix's hash and take the first upstream whose load, counting this request,
 * stays within loadFactor × the average load (also counting it). If none qualifies, the first one.
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
  const threshold = ((totalLoad + 1) / eligible.length) * loadFactor;
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
    if (totalLoad === 0 || candidate.inFlight + 1 <= threshold) return candidate;
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
