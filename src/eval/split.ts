// Deterministic parts of the suites: calibration (routers learn from it), dev (tuning) and test (reported). Within
// each category items are ordered by the sha256 of their id, and the first quarter (rounded up, at least one item)
// is calibration, the next quarter dev, the rest test: a category of 3 or more items has items in each part (of 1:
// calibration only; of 2: no test item), and the same items always split the same way. The split is over the items
// given: adding items of a category to a suite (or inline items) can move others across a boundary. Evals of a router also skip the items recorded as its
// calibration, so a suite edited after the router was made still never scores them.
import { createHash } from 'node:crypto';
import { byCategory, type SuiteItem } from './suite.js';

export type SuitePart = 'calibration' | 'dev' | 'test';

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

/** The items of one part, in suite order. */
export function itemsOfPart<T extends Pick<SuiteItem, 'id' | 'category'>>(items: readonly T[], part: SuitePart): T[] {
  const parts = splitSuite(items);
  return items.filter((item) => parts.get(item.id) === part);
}

/** Up to `n` calibration items of a category, in hash order (the same ones every time). */
export function calibrationItems<T extends Pick<SuiteItem, 'id' | 'category'>>(items: readonly T[], category: string, n: number): T[] {
  return itemsOfPart(
    items.filter((item) => item.category === category),
    'calibration',
  )
    .sort((a, b) => (order(a.id) < order(b.id) ? -1 : 1))
    .slice(0, n);
}
