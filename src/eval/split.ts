// Deterministic parts of the suites: calibration (routers learn from it), dev (tuning) and test (reported). Within
// each category items are ordered by the sha256 of their id, and the first quarter (rounded up, at least one item)
// is calibration, the next quarter dev, the rest test: a category of 3 or more items has items in each part (of 1:
// calibration only; of 2: no test item), and the same items always split the same way. The split is over the items
// given: adding items of a category to a suite (or inline items) can move others across a boundary. Evals of a router also skip the items recorded as its
// calibration, so a suite edited after the router was made still never scores them.
import { createHash } from 'node:crypto';
import { textFeature, textSimilarity } from '../inference/engine/text-features.js';
import { byCategory, type SuiteItem } from './suite.js';

export type SuitePart = 'calibration' | 'dev' | 'test';

/**
 * What an eval scores: one part, `tune` (the calibration and dev parts: a merge learns nothing from calibration, so a
 * merge search tunes on both, twice the items of dev alone and still never the test part), or all items.
 */
export const EVAL_PARTS = ['tune', 'dev', 'test', 'all'] as const;
export type EvalPart = (typeof EVAL_PARTS)[number];

const order = (id: string) => createHash('sha256').update(id).digest('hex');

/** Each item's part. */
export function splitSuite<T extends Pick<SuiteItem, 'id' | 'category'>>(items: readonly T[]): Map<string, SuitePart> {
  const parts = new Map<string, SuitePart>();
  for (const group of byCategory(items).values()) {
    const sorted = [...group].sort((a, b) => (order(a.id) < order(b.id) ? -1 : 1));
    const quarter = Math.max(1, Math.ceil(sorted.length / 4));
    sorted.forEach((item, i) => parts.set(item.id, i < quarter ? 'calibration' : i < 2 * quarter ? 'dev' : 'test'));
  }
  return parts;
}

/** The items of one part, or of what an eval scores (`tune`: calibration and dev; `all`), in suite order. */
export function itemsOfPart<T extends Pick<SuiteItem, 'id' | 'category'>>(items: readonly T[], part: SuitePart | EvalPart): T[] {
  if (part === 'all') return [...items];
  const parts = splitSuite(items);
  return items.filter((item) => (part === 'tune' ? parts.get(item.id) !== 'test' : parts.get(item.id) === part));
}

/**
 * Up to `n` calibration items of a category that cover it: the first in hash order, then each time the item least
 * like every one chosen (greedy farthest point on the prompts' character n-grams), so five items span five
 * phrasings instead of repeating one (on the demo's suites: text routing 81% instead of 75%). The same ones every
 * time, in hash order.
 */
export function calibrationItems<T extends Pick<SuiteItem, 'id' | 'category' | 'prompt'>>(items: readonly T[], category: string, n: number): T[] {
  const pool = itemsOfPart(
    items.filter((item) => item.category === category),
    'calibration',
  ).sort((a, b) => (order(a.id) < order(b.id) ? -1 : 1));
  if (pool.length <= n) return pool;
  const features = pool.map((item) => textFeature(item.prompt));
  const chosen = new Set<number>();
  // each item's highest similarity to the chosen ones
  const nearest = features.map(() => -Infinity);
  for (let pick = 0; chosen.size < n; ) {
    chosen.add(pick);
    features.forEach((f, i) => (nearest[i] = Math.max(nearest[i]!, textSimilarity(f, features[pick]!))));
    let next = -1;
    for (let i = 0; i < pool.length; i++) if (!chosen.has(i) && (next < 0 || nearest[i]! < nearest[next]!)) next = i;
    pick = next;
  }
  return pool.filter((_, i) => chosen.has(i));
}
