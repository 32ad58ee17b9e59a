import { editDistance } from '../core/index.ts';
/**
 * closest returns the candidate nearest to input when it is near enough to be a plausible typo: a prefix
 * of at least two characters, or an edit distance (with transpositions) of at most a third of the
 * input's length, and at least 1. Ties go to the earlier candidate.
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const word = input.toLowerCase();
  if (word.length >= 2) {
    const prefixed = candidates.find((c) => c.startsWith(word));
    if (prefixed) return prefixed;
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d <= limit && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

export { editDistance };
