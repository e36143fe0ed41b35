// Routing accuracy of a router in an eval: for each item scored through the router, whether the member it chose is
// an expert of the item's category (the member's category, from the router record). An item sent to the fallback,
// or answered by a blend of two members, counts as not routed right, and is counted apart. Pure.
import type { RoutingScore } from './report.js';

export interface RoutedItem {
  category: string;
  /** the model that answered: a member, the fallback, or a blend's members joined by '+' */
  model: string;
  fallback: boolean;
  blend: boolean;
}

export function routingScore(routed: readonly RoutedItem[], memberCategories: Readonly<Record<string, string | null>>): RoutingScore {
  const perCategory = new Map<string, { right: number; all: number }>();
  const chosen: Record<string, number> = {};
  let right = 0;
  let fallbacks = 0;
  let blends = 0;
  for (const r of routed) {
    const ok = !r.fallback && !r.blend && memberCategories[r.model] === r.category;
    if (ok) right++;
    if (r.fallback) fallbacks++;
    if (r.blend) blends++;
    chosen[r.model] = (chosen[r.model] ?? 0) + 1;
    const c = perCategory.get(r.category) ?? { right: 0, all: 0 };
    c.all++;
    if (ok) c.right++;
    perCategory.set(r.category, c);
  }
  return {
    items: routed.length,
    accuracy: routed.length === 0 ? 0 : right / routed.length,
    fallbacks,
    blends,
    perCategory: Object.fromEntries([...perCategory].map(([c, s]) => [c, s.right / s.all])),
    chosen,
  };
}
