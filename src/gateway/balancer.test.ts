import { describe, expect, it } from "vitest";
import {
  buildHashRing,
  type Candidate,
  EXACT_LEAST_LOAD_UP_TO,
  eligibleCandidates,
  hashString,
  pickLeastLoad,
  pickPrefixHash,
  pickRoundRobin,
  pickUpstream,
  ringIndexOf,
} from "./balancer.js";

function candidate(id: string, inFlight = 0, extra: Partial<Candidate> = {}): Candidate {
  return { id, state: "ready", inFlight, ejected: false, ...extra };
}

/** A random source that replays `values` (then repeats the last). */
function replay(...values: number[]): () => number {
  let index = 0;
  return () => values[Math.min(index++, values.length - 1)]!;
}

const GRID = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.999];

describe("eligibleCandidates", () => {
  it.each([
    {
      name: "only ready ones",
      candidates: [
        candidate("a"),
        candidate("b", 0, { state: "starting" }),
        candidate("c", 0, { state: "draining" }),
      ],
      exclude: [],
      expected: ["a"],
    },
    {
      name: "not those already tried",
      candidates: [candidate("a"), candidate("b"), candidate("c")],
      exclude: ["b"],
      expected: ["a", "c"],
    },
    {
      name: "not ejected ones while others are healthy",
      candidates: [candidate("a", 0, { ejected: true }), candidate("b")],
      exclude: [],
      expected: ["b"],
    },
    {
      name: "ejected ones when nothing else is left (panic)",
      candidates: [candidate("a", 0, { ejected: true }), candidate("b", 0, { ejected: true })],
      exclude: [],
      expected: ["a", "b"],
    },
    {
      name: "panic never brings back a non-ready or tried one",
      candidates: [
        candidate("a", 0, { ejected: true }),
        candidate("b", 0, { ejected: true, state: "failed" }),
        candidate("c"),
      ],
      exclude: ["c"],
      expected: ["a"],
    },
    { name: "nothing", candidates: [], exclude: [], expected: [] },
  ])("$name", ({ candidates, exclude, expected }) => {
    expect(eligibleCandidates(candidates, new Set(exclude)).map((c) => c.id)).toEqual(expected);
  });
});

describe("pickLeastLoad", () => {
  it("never picks the busiest of two", () => {
    const pair = [candidate("busy", 5), candidate("idle", 0)];
    for (const r1 of GRID) {
      for (const r2 of GRID) {
        expect(pickLeastLoad(pair, replay(r1, r2), 2)?.id).toBe("idle");
        expect(pickLeastLoad(pair, replay(r1, r2))?.id).toBe("idle");
      }
    }
  });

  it("with two choices never picks a replica that has strictly more in flight than all others", () => {
    const replicas = [candidate("a", 0), candidate("slow", 4), candidate("c", 1), candidate("d", 0)];
    const picked = new Set<string>();
    for (const r1 of GRID) for (const r2 of GRID) picked.add(pickLeastLoad(replicas, replay(r1, r2), 2)!.id);
    expect(picked.has("slow")).toBe(false);
    // Power of two choices may take c (1 in flight) when the draw misses both idle replicas.
    expect(picked).toEqual(new Set(["a", "c", "d"]));
  });

  it("compares every replica by default when there are few, so an idle one always wins", () => {
    const replicas = [candidate("a", 0), candidate("slow", 4), candidate("c", 1), candidate("d", 0)];
    const picked = new Set<string>();
    for (const r1 of GRID) picked.add(pickLeastLoad(replicas, replay(r1))!.id);
    expect(picked).toEqual(new Set(["a", "d"]));
  });

  it("uses two choices by default beyond EXACT_LEAST_LOAD_UP_TO replicas", () => {
    const many = Array.from({ length: EXACT_LEAST_LOAD_UP_TO + 1 }, (_, i) =>
      candidate(`r${i}`, i === 5 ? 0 : 3),
    );
    // Draws indices 0 and 1: neither is the idle r5, which an exact scan finds.
    expect(pickLeastLoad(many, replay(0, 0))?.id).toBe("r0");
    expect(pickLeastLoad(many, replay(0, 0), many.length)?.id).toBe("r5");
  });

  it("compares two distinct candidates even when both draws hit the same index", () => {
    // 0 and 0: the first is index 0, the second is drawn among the other n-1, so index 1.
    const replicas = [candidate("a", 3), candidate("b", 1), candidate("c", 0)];
    expect(pickLeastLoad(replicas, replay(0, 0), 2)?.id).toBe("b");
  });

  it("keeps the first choice on a tie", () => {
    expect(pickLeastLoad([candidate("a", 1), candidate("b", 1)], replay(0.9, 0), 2)?.id).toBe("b");
    expect(pickLeastLoad([candidate("a", 1), candidate("b", 1)], replay(0, 0), 2)?.id).toBe("a");
  });

  it.each([
    { random: 0, expected: "b" },
    { random: 0.49, expected: "b" },
    { random: 0.5, expected: "d" },
    { random: 0.999, expected: "d" },
  ])(
    "with as many choices as candidates takes the least loaded, ties at random ($random → $expected)",
    ({ random, expected }) => {
      const replicas = [candidate("a", 2), candidate("b", 0), candidate("c", 1), candidate("d", 0)];
      expect(pickLeastLoad(replicas, replay(random), 4)?.id).toBe(expected);
      expect(pickLeastLoad(replicas, replay(random), 10)?.id).toBe(expected);
    },
  );

  it("compares exactly `choices` distinct candidates", () => {
    // Draws index 0, then 0 of the rest (index 1), then 0 of the rest (index 2): d is never seen.
    const replicas = [candidate("a", 3), candidate("b", 2), candidate("c", 1), candidate("d", 0)];
    expect(pickLeastLoad(replicas, replay(0, 0, 0), 3)?.id).toBe("c");
    const seen = new Set<string>();
    for (const r1 of GRID)
      for (const r2 of GRID)
        for (const r3 of GRID) {
          seen.add(pickLeastLoad(replicas, replay(r1, r2, r3), 3)!.id);
        }
    // Any three of the four include c or d, so the busier a and b never win.
    expect(seen).toEqual(new Set(["c", "d"]));
  });

  it.each([[[]], [[candidate("only", 9)]]])("handles %# candidates", (replicas) => {
    expect(pickLeastLoad(replicas, Math.random)?.id).toBe(replicas[0]?.id);
  });
});

describe("pickRoundRobin", () => {
  it.each([
    { sequence: 0, expected: "a" },
    { sequence: 1, expected: "b" },
    { sequence: 2, expected: "c" },
    { sequence: 3, expected: "a" },
    { sequence: 302, expected: "c" },
  ])("sequence $sequence → $expected", ({ sequence, expected }) => {
    expect(pickRoundRobin([candidate("a"), candidate("b"), candidate("c")], sequence)?.id).toBe(expected);
  });

  it("ignores load", () => {
    expect(pickRoundRobin([candidate("a", 100), candidate("b", 0)], 0)?.id).toBe("a");
  });
});

describe("hash ring", () => {
  it("hashes deterministically to unsigned 32-bit values", () => {
    expect(hashString("hello")).toBe(hashString("hello"));
    expect(hashString("hello")).not.toBe(hashString("hellp"));
    for (const text of ["", "a", "ü", "x".repeat(1000)]) {
      const hash = hashString(text);
      expect(Number.isInteger(hash) && hash >= 0 && hash < 2 ** 32).toBe(true);
    }
  });

  it("sorts points and does not depend on the order ids come in", () => {
    const ring = buildHashRing(["a", "b", "c"], 16);
    expect(ring.points.length).toBe(48);
    for (let i = 1; i < ring.points.length; i++)
      expect(ring.points[i]!).toBeGreaterThanOrEqual(ring.points[i - 1]!);
    const reversed = buildHashRing(["c", "b", "a"], 16);
    expect([...reversed.points]).toEqual([...ring.points]);
    expect(reversed.owners).toEqual(ring.owners);
  });

  it("finds the first point at or after a hash, wrapping around", () => {
    const ring = { points: Uint32Array.from([10, 20, 30]), owners: ["a", "b", "c"] };
    expect([5, 10, 11, 30, 31].map((hash) => ringIndexOf(ring, hash))).toEqual([0, 0, 1, 2, 0]);
  });

  it("splits keys over upstreams roughly evenly", () => {
    const replicas = ["r1", "r2", "r3", "r4"].map((id) => candidate(id));
    const ring = buildHashRing(replicas.map((r) => r.id));
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const id = pickPrefixHash(replicas, ring, `conversation ${i}`, 1.25)!.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    for (const replica of replicas) expect(counts.get(replica.id)).toBeGreaterThan(600);
  });
});

describe("pickPrefixHash (consistent hashing with bounded loads)", () => {
  const replicas = ["r1", "r2", "r3"].map((id) => candidate(id));
  const ring = buildHashRing(replicas.map((r) => r.id));

  it("sends the same prefix to the same upstream", () => {
    for (let i = 0; i < 50; i++) {
      const prefix = `system prompt ${i}`;
      expect(pickPrefixHash(replicas, ring, prefix, 1.25)?.id).toBe(
        pickPrefixHash(replicas, ring, prefix, 1.25)?.id,
      );
    }
  });

  it("moves only the keys of an upstream that leaves", () => {
    const without = replicas.filter((r) => r.id !== "r2");
    const smallerRing = buildHashRing(without.map((r) => r.id));
    for (let i = 0; i < 300; i++) {
      const prefix = `key ${i}`;
      const before = pickPrefixHash(replicas, ring, prefix, 1.25)!.id;
      const after = pickPrefixHash(without, smallerRing, prefix, 1.25)!.id;
      if (before !== "r2") expect(after).toBe(before);
    }
  });

  it("walks past an upstream whose load exceeds loadFactor × average", () => {
    const prefix = "a shared prefix";
    const home = pickPrefixHash(replicas, ring, prefix, 1.25)!.id;
    const loaded = replicas.map((r) => candidate(r.id, r.id === home ? 6 : 1));
    // total 8, +1 for this request: average 3, capacity ⌈3.75⌉ = 4; home would be at 7.
    const chosen = pickPrefixHash(loaded, ring, prefix, 1.25)!;
    expect(chosen.id).not.toBe(home);
    expect(chosen.inFlight).toBe(1);
  });

  it.each([
    { name: "no load at all", loads: [0, 0, 0] },
    { name: "equal load", loads: [4, 4, 4] },
    { name: "home a little above average, within the factor", loads: [5, 5, 4] },
  ])("keeps the home upstream with $name", ({ loads }) => {
    const prefix = "another prefix";
    const home = pickPrefixHash(replicas, ring, prefix, 1.25)!.id;
    const others = replicas.filter((r) => r.id !== home).map((r) => r.id);
    const byId = new Map([
      [home, loads[0]!],
      [others[0]!, loads[1]!],
      [others[1]!, loads[2]!],
    ]);
    const loaded = replicas.map((r) => candidate(r.id, byId.get(r.id)!));
    expect(pickPrefixHash(loaded, ring, prefix, 1.25)?.id).toBe(home);
  });

  it("keeps the home upstream at exactly the capacity", () => {
    // loadFactor 1 with loads 2/2/2: each would be at 3 = ⌈(6+1)/3⌉.
    const loaded = replicas.map((r) => candidate(r.id, 2));
    const home = pickPrefixHash(replicas, ring, "p", 1)!.id;
    expect(pickPrefixHash(loaded, ring, "p", 1)?.id).toBe(home);
  });

  it.each([
    // 4 replicas, 3 in flight (1 on home): capacity ⌈1.25 × 4/4⌉ = 2, home would be at 2. Without
    // the ceiling (KubeAI) the bound is 1.25 and home would lose its prefix to an idle replica.
    { name: "home holds one request among few in flight", homeLoad: 1, otherLoads: [1, 1, 0], stays: true },
    { name: "home busier than the capacity", homeLoad: 2, otherLoads: [0, 0, 0], stays: false },
    { name: "a lone request in flight, on home", homeLoad: 1, otherLoads: [0, 0, 0], stays: false },
    { name: "a lone request in flight, elsewhere", homeLoad: 0, otherLoads: [1, 0, 0], stays: true },
  ])("bounds with the paper's ceiling: $name", ({ homeLoad, otherLoads, stays }) => {
    const four = ["r1", "r2", "r3", "r4"].map((id) => candidate(id));
    const fourRing = buildHashRing(four.map((r) => r.id));
    const prefix = "the ceiling";
    const home = pickPrefixHash(four, fourRing, prefix, 1.25)!.id;
    const others = four.filter((r) => r.id !== home);
    const loaded = [
      candidate(home, homeLoad),
      ...others.map((r, index) => candidate(r.id, otherLoads[index]!)),
    ];
    const chosen = pickPrefixHash(loaded, fourRing, prefix, 1.25)!.id;
    expect(chosen === home).toBe(stays);
  });
});

describe("pickUpstream", () => {
  const base = { random: replay(0, 0), sequence: 0, loadFactor: 1.25 } as const;

  it("returns undefined when no upstream is ready", () => {
    const replicas = [candidate("a", 0, { state: "starting" })];
    expect(pickUpstream(replicas, { ...base, strategy: "least-load" })).toBeUndefined();
  });

  it.each(["least-load", "round-robin", "prefix-hash"] as const)(
    "%s skips excluded and ejected upstreams",
    (strategy) => {
      const replicas = [candidate("a"), candidate("b", 0, { ejected: true }), candidate("c")];
      for (let sequence = 0; sequence < 6; sequence++) {
        const chosen = pickUpstream(replicas, {
          ...base,
          strategy,
          sequence,
          random: replay(sequence / 6, 0.5),
          prefix: `p${sequence}`,
          exclude: new Set(["a"]),
        });
        expect(chosen?.id).toBe("c");
      }
    },
  );

  it("prefix-hash without a prompt prefix balances by load", () => {
    const replicas = [candidate("a", 3), candidate("b", 0)];
    expect(pickUpstream(replicas, { ...base, strategy: "prefix-hash" })?.id).toBe("b");
  });

  it("uses a provided ring builder (cache)", () => {
    const built: string[][] = [];
    const replicas = [candidate("a"), candidate("b")];
    pickUpstream(replicas, {
      ...base,
      strategy: "prefix-hash",
      prefix: "x",
      ringOf: (ids) => {
        built.push([...ids]);
        return buildHashRing(ids);
      },
    });
    expect(built).toEqual([["a", "b"]]);
  });
});
