// Stop sequences over streamed text: finds a stop string even when it spans several tokens, and
// holds back any tail that could still become one, so text that turns out to be a stop is never streamed.

export interface StopStep {
  /** Text that can be released now: it cannot be part of a stop sequence any more. */
  emit: string;
  /** True when a stop sequence matched; `emit` is the text before it and the generation ends. */
  stopped: boolean;
}

export class StopMatcher {
  private held = "";

  constructor(private readonly stops: readonly string[]) {}

  push(text: string): StopStep {
    if (this.stops.length === 0) return { emit: text, stopped: false };
    this.held += text;
    // Everything released earlier had no stop prefix at its end, so a match can only start in `held`.
    let matchAt = -1;
    for (const stop of this.stops) {
      const index = this.held.indexOf(stop);
      if (index !== -1 && (matchAt === -1 || index < matchAt)) matchAt = index;
    }
    if (matchAt !== -1) {
      const emit = this.held.slice(0, matchAt);
      this.held = "";
      return { emit, stopped: true };
    }
    const keep = longestStopPrefixSuffix(this.held, this.stops);
    const emit = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return { emit, stopped: false };
  }

  /** At the end of a generation the held tail is not a stop after all: release it. */
  flush(): string {
    const rest = this.held;
    this.held = "";
    return rest;
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop sequence. */
export function longestStopPrefixSuffix(text: string, stops: readonly string[]): number {
  let longest = 0;
  for (const stop of stops) {
    const limit = Math.min(stop.length - 1, text.length);
    for (let length = limit; length > longest; length--) {
      if (text.endsWith(stop.slice(0, length))) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}
