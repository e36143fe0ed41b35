// A tuned sweep in words, one wording for the CLI and the bot; type imports only, so the CLI reads it at start-up.
import type { TuneResult } from '../eval/jobs.js';

/**
 * What the search tuned and what its ranking was scored on; then its best point on the test part (null until scored).
 * `ret` writes a retention; `strong` marks the figure to quote.
 */
export function describeTune(tune: TuneResult, ret: (v: number | null) => string, strong = (s: string) => s): { search: string; test: string | null } {
  const what = tune.layerGroups ? `a weight per adapter per layer group (${tune.layerGroups} groups)` : 'a weight per adapter';
  const search = `${what}, ${tune.budget} merges, ranked on the tune part (calibration and dev, ${tune.tuneItems} items)`;
  if (!tune.test) return { search, test: null };
  const cats = Object.entries(tune.test.categories).map(([c, s]) => `${c} ${ret(s.retention)}`).join(', ');
  const test = `best point on the test part (${tune.testItems} items, never seen by the search): worst ${strong(ret(tune.test.worstRetention))}, mean ${ret(tune.test.meanRetention)} (${cats})`;
  return { search, test };
}
