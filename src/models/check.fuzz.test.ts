// Fuzzing the GGUF reader and the model check (fast-check): mutations of a small valid model
// (flipped bytes, boundary values written over header fields, cuts, inserted and deleted bytes).
// The property: checkModelFile resolves with a summary or rejects with a ModelError of a known code
// whose message is one line starting with the path; never another exception, never a hang. Then
// mutants the check passed are loaded by the real llama.cpp: what the check accepts, the engine runs.
// FUZZ_RUNS / FUZZ_SEED: see test/support/fuzz.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fuzzParameters } from "../../test/support/fuzz.js";
import { smallVocabularyModel } from "../../test/support/gguf-models.js";
import { checkModelFile } from "./check.js";
import { MODEL_ERROR_CODES, ModelError } from "./errors.js";
import { readGguf, writeGguf } from "./gguf.js";

const directory = mkdtempSync(join(tmpdir(), "berth-check-fuzz-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

let original: Buffer;
let headerEnd = 0;

beforeAll(async () => {
  const path = join(directory, "small.gguf");
  await writeGguf(path, smallVocabularyModel());
  original = readFileSync(path);
  headerEnd = (await readGguf(path)).dataOffset;
});

type Mutation =
  | { kind: "flip"; at: number; byte: number; inHeader: boolean }
  | { kind: "u32" | "u64"; at: number; value: bigint }
  | { kind: "cut"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number };

const BOUNDARY = [
  0n,
  1n,
  2n,
  3n,
  4n,
  31n,
  32n,
  255n,
  0x7fffffffn,
  0xffffffffn,
  2n ** 53n,
  2n ** 63n,
  2n ** 64n - 1n,
];

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    byte: fc.integer({ min: 0, max: 255 }),
    inHeader: fc.boolean(),
  }),
  fc.record({
    kind: fc.constantFrom("u32" as const, "u64" as const),
    at: fc.nat(),
    value: fc.constantFrom(...BOUNDARY),
  }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
);

/** Applies mutations; offsets land in the header (where structure lives) unless a flip asks otherwise. */
function mutate(bytes: Buffer, mutations: Mutation[]): { bytes: Buffer; headerChanged: boolean } {
  let result = Buffer.from(bytes);
  let headerChanged = false;
  for (const change of mutations) {
    const headerAt = change.at % Math.max(1, Math.min(headerEnd, result.length));
    switch (change.kind) {
      case "flip": {
        const at = change.inHeader ? headerAt : change.at % result.length;
        headerChanged ||= at < headerEnd && result[at] !== change.byte;
        result[at] = change.byte;
        break;
      }
      case "u32":
      case "u64": {
        const size = change.kind === "u32" ? 4 : 8;
        const at = Math.min(headerAt, result.length - size);
        if (at < 0) break;
        if (size === 4) result.writeUInt32LE(Number(change.value & 0xffffffffn), at);
        else result.writeBigUInt64LE(change.value, at);
        headerChanged = true;
        break;
      }
      case "cut":
        result = result.subarray(0, change.at % (result.length + 1));
        headerChanged = true;
        break;
      case "insert":
        result = Buffer.concat([result.subarray(0, headerAt), change.bytes, result.subarray(headerAt)]);
        headerChanged = true;
        break;
      case "delete":
        result = Buffer.concat([result.subarray(0, headerAt), result.subarray(headerAt + change.length)]);
        headerChanged = true;
        break;
    }
  }
  return { bytes: result, headerChanged };
}

const CHECK_DEADLINE_MS = 20_000;

describe("GGUF check fuzz: a clear ModelError or a valid model, never a crash", () => {
  const accepted: string[] = [];

  it("mutated small models", async () => {
    let caseNumber = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        const { bytes, headerChanged } = mutate(original, mutations);
        const path = join(directory, `mutant-${caseNumber++}.gguf`);
        writeFileSync(path, bytes);
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("the check hung")), CHECK_DEADLINE_MS);
        });
        try {
          await Promise.race([checkModelFile(path), deadline]);
          if (headerChanged && !bytes.equals(original)) accepted.push(path);
          else rmSync(path);
        } catch (error) {
          rmSync(path);
          if (!(error instanceof ModelError)) {
            throw new Error(`not a ModelError: ${error instanceof Error ? error.stack : String(error)}`);
          }
          expect(Object.keys(MODEL_ERROR_CODES)).toContain(error.code);
          expect(error.message.startsWith(`${path}: `), error.message).toBe(true);
          expect(error.message).not.toContain("\n");
        } finally {
          clearTimeout(timer);
        }
      }),
      fuzzParameters(300),
    );
  });

  it("mutants the check accepted load in llama.cpp", async () => {
    // Most structural mutations are refused; the ones accepted changed strings or numbers in the
    // metadata. Loading a few proves the check does not pass what llama.cpp would refuse.
    expect(accepted.length, "no mutant passed the check: the fuzz tests only refusals").toBeGreaterThan(0);
    const { getLlama } = await import("node-llama-cpp");
    const llama = await getLlama({ gpu: false, build: "never" });
    for (const path of accepted.slice(0, Number(process.env.FUZZ_LOADS ?? 10))) {
      // llama.cpp aborts the process on what it asserts: name the file first, so a crash says which.
      process.stderr.write(`loading ${path} in llama.cpp\n`);
      const model = await llama.loadModel({ modelPath: path }).catch((error: unknown) => {
        throw new Error(`the check accepted ${path} but llama.cpp refused it: ${String(error)}`);
      });
      await model.dispose();
    }
  });
});
