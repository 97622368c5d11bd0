// The demo model (examples/demo-model, trained by scripts/demo-model/train.sh on the KJV) for tests
// that need text that means something, and a measure of how English-like a text is: the share of its
// words that occur in the model's training text (examples/demo-model/training-words.txt).

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./serve-process.js";

export const DEMO_MODEL_DIR = join(REPO_ROOT, "examples", "demo-model");

let trainingWords: Set<string> | undefined;

function loadTrainingWords(): Set<string> {
  trainingWords ??= new Set(
    readFileSync(join(DEMO_MODEL_DIR, "training-words.txt"), "utf8").split("\n").filter(Boolean),
  );
  return trainingWords;
}

export interface WordShare {
  /** The text's words: runs of letters, lowercased. */
  words: string[];
  /** The words that the training text never uses. */
  unknown: string[];
  /** known / all (0 for a text without words). */
  share: number;
}

/** How much of `text` is words the demo model read in training: gibberish scores low, its English high. */
export function trainingWordShare(text: string): WordShare {
  const known = loadTrainingWords();
  const words = (text.match(/[A-Za-z]+/g) ?? []).map((word) => word.toLowerCase());
  const unknown = words.filter((word) => !known.has(word));
  return { words, unknown, share: words.length === 0 ? 0 : (words.length - unknown.length) / words.length };
}
