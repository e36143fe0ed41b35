// METHODS, the one table of what each merge method does, which the planner, the three merge paths, the recipe
// schema (options.ts) and every help text read. A new method starts here. Free of zod and the engine, so a help
// text can list the methods without loading them. Semantics: docs/MERGE.md.

/** Recipe fields a method reads besides the adapters and their weights. */
export type Knob = 'density' | 'majoritySignMethod' | 'trimScope' | 'rank' | 'energy' | 'seed';

export interface MethodTraits {
  /** one line for the help texts */
  summary: string;
  /**
   * Which entries of each update are dropped before the combination: none; all but the `density` share with the
   * largest |x| (top-k, per tensor or per adapter by `trimScope`); or each at random with probability 1 − density,
   * the survivors divided by density (DARE: masks keyed by seed, module and the adapter's position in the list).
   */
  sparsify: 'none' | 'magnitude' | 'random';
  /** TIES's vote: per entry the sign of the weighted total (or majority) wins and the agreeing entries are averaged */
  electSigns: boolean;
  /**
   * Delta space keeps the exact weighted sum Σ w_i·ΔW_i (or its SVD truncation), computed from the factors with no
   * ΔW formed. Not exact: the entries of each ΔW_i are pruned and combined, and the result is re-factored by a
   * randomized SVD (dense.ts).
   */
  exact: boolean;
  /**
   * The factors of an exact method's result: 'stack' = [B_1 … B_n] and [c_1A_1; …; c_nA_n] at rank Σr_i, nothing
   * cut; 'sum' = the stack unless a rank or energy asks for a cut, then the SVD of the sum; 'svd' = always the SVD
   * of the sum. null for the rest. In factors space (PEFT) 'stack' and 'svd' keep their meaning and every other
   * method combines the A's and the B's entry by entry (which needs equal ranks).
   */
  factors: 'stack' | 'sum' | 'svd' | null;
  knobs: readonly Knob[];
}

/**
 * Every merge method, in the order help texts list them. A new TIES-family method (DELLA, breadcrumbs) is one row
 * here, plus a primitive in primitives.ts and a branch of `sparsify` if it drops entries in a new way.
 */
export const METHODS = {
  linear: {
    summary: 'weighted sum of the updates (exact; a rank or energy truncates it by SVD)',
    sparsify: 'none',
    electSigns: false,
    exact: true,
    factors: 'sum',
    knobs: ['rank', 'energy'],
  },
  cat: {
    summary: 'stack the factors: the exact sum at rank Σr_i',
    sparsify: 'none',
    electSigns: false,
    exact: true,
    factors: 'stack',
    knobs: [],
  },
  svd: {
    summary: 'exact sum, SVD-truncated to --rank or --energy',
    sparsify: 'none',
    electSigns: false,
    exact: true,
    factors: 'svd',
    knobs: ['rank', 'energy'],
  },
  ties: {
    summary: 'trim to the largest --density share, elect signs, mean of the agreeing entries',
    sparsify: 'magnitude',
    electSigns: true,
    exact: false,
    factors: null,
    knobs: ['density', 'majoritySignMethod', 'trimScope', 'rank', 'energy', 'seed'],
  },
  dare_linear: {
    summary: 'drop entries at random (keep --density, rescale), weighted sum',
    sparsify: 'random',
    electSigns: false,
    exact: false,
    factors: null,
    knobs: ['density', 'rank', 'energy', 'seed'],
  },
  dare_ties: {
    summary: 'DARE drop, then the TIES sign election',
    sparsify: 'random',
    electSigns: true,
    exact: false,
    factors: null,
    knobs: ['density', 'majoritySignMethod', 'rank', 'energy', 'seed'],
  },
  magnitude_prune: {
    summary: 'keep the largest --density share of entries, then weighted sum',
    sparsify: 'magnitude',
    electSigns: false,
    exact: false,
    factors: null,
    knobs: ['density', 'trimScope', 'rank', 'energy', 'seed'],
  },
} as const satisfies Record<string, MethodTraits>;

export type MergeMethod = keyof typeof METHODS;
export const MERGE_METHODS = Object.keys(METHODS) as [MergeMethod, ...MergeMethod[]];
/** The traits of a method, widened (so `METHODS[m].sparsify === 'random'` type-checks for any m). */
export const traitsOf = (method: MergeMethod): MethodTraits => METHODS[method];
export const takes = (method: MergeMethod, knob: Knob): boolean => traitsOf(method).knobs.includes(knob);
/** Methods that take a `density` (they drop entries). */
export const PRUNING_METHODS: ReadonlySet<MergeMethod> = new Set(MERGE_METHODS.filter((m) => takes(m, 'density')));
/** density of the pruning methods when none is given: the TIES paper's top-20%, also mergekit's usual choice */
export const DEFAULT_DENSITY = 0.2;

/**
 * The weights a front door uses when none are given: the scale of one adapter. The summing methods add the
 * updates, so 1/n each (summing to 1); ties and dare_ties average the agreeing entries, so 1 each. The API and the
 * bot take weights explicitly; the CLI fills these in and says so in its help.
 */
export function defaultWeights(method: MergeMethod, n: number): number[] {
  return new Array<number>(n).fill(traitsOf(method).electSigns ? 1 : 1 / n);
}

/** The default weights in words, for help texts. */
export const DEFAULT_WEIGHTS_TEXT = (() => {
  const [summing, electing] = [false, true].map((e) => MERGE_METHODS.filter((m) => traitsOf(m).electSigns === e));
  return `1/n each for ${listMethods(summing!, 'and')}, 1 each for ${listMethods(electing!, 'and')} (they average the agreeing entries): the scale of one adapter`;
})();

/** "a, b, c or d" */
export function listMethods(methods: Iterable<MergeMethod>, last = 'or'): string {
  const all = [...methods];
  return all.length <= 1 ? all.join('') : `${all.slice(0, -1).join(', ')} ${last} ${all[all.length - 1]}`;
}
