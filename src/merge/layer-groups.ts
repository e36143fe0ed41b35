// Per-layer-group weights (AdaMerging-style): the weight of adapter i in module m is w_i × g[i][group(m)], the
// groups being consecutive ranges of transformer blocks, equal shares of the layer index range unless `starts`
// names the first block of each group after the first. A module with no block index (lm_head, embeddings) keeps w_i.
import type { MergeOptions } from './options.js';

/** The block index in a module path (`…layers.7.self_attn.q_proj` → 7; GPT-2's `h.7`, `blocks.7`), or null. */
export function layerIndex(name: string): number | null {
  const m = /(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

/** Which group each block falls in, given the block indices the merge touches. */
export function groupOf(layer: number, groups: number, range: { min: number; max: number }, starts?: readonly number[]): number {
  if (starts) return starts.filter((s) => s <= layer).length;
  const span = range.max - range.min + 1;
  return Math.min(groups - 1, Math.floor(((layer - range.min) * groups) / span));
}

/**
 * The per-module weight of each adapter: `(module, adapter) → w_i·g` (w_i alone without layerWeights). The layer
 * range is taken over every module merged, so the groups do not depend on which adapter covers which module.
 */
export function moduleWeights(options: Pick<MergeOptions, 'weights' | 'layerWeights'>, moduleNames: readonly string[]): (module: string, adapter: number) => number {
  const lw = options.layerWeights;
  if (!lw) return (_m, i) => options.weights[i]!;
  const layers = moduleNames.map(layerIndex).filter((l): l is number => l !== null);
  const range = { min: Math.min(...layers), max: Math.max(...layers) };
  const groups = lw.weights[0]!.length;
  return (module, i) => {
    const l = layerIndex(module);
    const w = options.weights[i]!;
    return l === null ? w : w * lw.weights[i]![groupOf(l, groups, range, lw.starts)]!;
  };
}

/**
 * The weights that say how strong a merge is: w_i alone, or with layerWeights the group whose weights w_i·g_i,k sum
 * highest (a recipe of weights 1 and group weights 0.25 is as strong as weights 0.25, not 1).
 */
export function strongestWeights(options: { weights: readonly number[]; layerWeights?: { weights: number[][] } }): number[] {
  const lw = options.layerWeights;
  if (!lw) return [...options.weights];
  const groups = lw.weights[0]?.length ?? 0;
  const byGroup = Array.from({ length: groups }, (_, k) => options.weights.map((w, i) => w * (lw.weights[i]?.[k] ?? 1)));
  return byGroup.reduce((best, g) => (g.reduce((a, b) => a + b, 0) > best.reduce((a, b) => a + b, 0) ? g : best), byGroup[0] ?? [...options.weights]);
}
