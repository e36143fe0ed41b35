// The merge recipe: one zod schema shared by the CLI, the API and the bot, so every front door accepts and refuses
// the same requests with the same messages; and METHODS, the one table of what each method does, which the
// planner, the three merge paths, the checks below and every help text read. Semantics: docs/MERGE.md.
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';

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

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

export const MergeOptionsSchema = z
  .object({
    method: z.enum(MERGE_METHODS),
    /** 'delta' works on each adapter's true update s·B·A; 'factors' reproduces PEFT's add_weighted_adapter. */
    space: z.enum(['delta', 'factors']).default('delta'),
    /** one weight per input adapter, in input order; negative weights subtract */
    weights: z.array(finite).min(1, 'give one weight per adapter'),
    /** share of entries kept by ties, dare_* and magnitude_prune (0..1; >= 1 keeps everything; default 0.2) */
    density: finite.min(0, 'density must be >= 0 (the share of entries kept, e.g. 0.2)').optional(),
    majoritySignMethod: z.enum(['total', 'frequency']).default('total'),
    /** rank of the merged adapter (default: Σr_i for linear/cat/svd, max r_i for the pruning methods) */
    rank: z.number().int().positive().optional(),
    /** pick the smallest rank per module that keeps this share of the energy Σσ² (capped at `rank`) */
    energy: z.number().gt(0).max(1).optional(),
    /** seed of the DARE masks and the randomized SVD: same seed, same merge */
    seed: z.number().int().min(0).max(0xffffffff).default(0),
    /** top-k scope of ties/magnitude_prune in delta space: each tensor (PEFT, mergekit) or each adapter (TIES paper) */
    trimScope: z.enum(['tensor', 'adapter']).default('tensor'),
    /**
     * Per-layer-group weights: the weight of adapter i in a module of group k is weights[i] × layerWeights.weights[i][k].
     * Groups are equal shares of the block index range (e.g. 3 columns: early, middle, late) unless `starts` gives
     * the first block of each group after the first. Modules outside the blocks keep weights[i]. (layer-groups.ts)
     */
    layerWeights: z
      .object({
        weights: z.array(z.array(finite).min(1, 'give at least one group weight per adapter')).min(1),
        starts: z.array(z.number().int().min(1)).optional(),
      })
      .strict()
      .optional(),
    /** dtype of the written adapter (default: the inputs') */
    dtype: z.enum(['F32', 'F16', 'BF16']).optional(),
  })
  .superRefine((o, ctx) => {
    const traits = traitsOf(o.method);
    if (!takes(o.method, 'density') && o.density !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['density'], message: `method ${o.method} keeps every entry and takes no density; use ${listMethods(PRUNING_METHODS)} to prune` });
    }
    if (!takes(o.method, 'rank') && (o.rank !== undefined || o.energy !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['rank'], message: `${o.method} always has rank Σr_i; use svd (or linear) with a rank or energy to truncate` });
    }
    if (o.space === 'factors' && o.energy !== undefined && traits.factors !== 'svd') {
      ctx.addIssue({ code: 'custom', path: ['energy'], message: `energy applies to delta space and to svd; method ${o.method} in factors space keeps PEFT's rank` });
    }
    if (o.space === 'factors' && o.rank !== undefined && traits.factors !== 'svd') {
      ctx.addIssue({ code: 'custom', path: ['rank'], message: `in factors space only svd takes a rank (PEFT keeps the inputs' rank for ${o.method}); use delta space to choose one` });
    }
    if (o.layerWeights) layerWeightIssues(o).forEach((message) => ctx.addIssue({ code: 'custom', path: ['layerWeights'], message }));
    if (o.space === 'factors' && o.trimScope === 'adapter') {
      ctx.addIssue({ code: 'custom', path: ['trimScope'], message: 'trimScope "adapter" applies to delta space; factors space trims each tensor, as PEFT does' });
    }
  })
  // the default is written into the recipe, so `ties` and `ties density 0.2` are one job, one hash, one report
  .overwrite((o) => (takes(o.method, 'density') && o.density === undefined ? { ...o, density: DEFAULT_DENSITY } : o));

/** Why a recipe's layerWeights cannot be honoured (shape, group starts, or a method/space where a weight is no scale). */
function layerWeightIssues(o: { method: MergeMethod; space: 'delta' | 'factors'; weights: number[]; layerWeights?: { weights: number[][]; starts?: number[] } }): string[] {
  const lw = o.layerWeights!;
  const groups = lw.weights[0]!.length;
  const out: string[] = [];
  if (lw.weights.length !== o.weights.length) out.push(`give one row of group weights per adapter (${o.weights.length}), got ${lw.weights.length}`);
  if (lw.weights.some((row) => row.length !== groups)) out.push('every adapter needs the same number of group weights');
  if (lw.starts && (lw.starts.length !== groups - 1 || lw.starts.some((s, i) => i > 0 && s <= lw.starts![i - 1]!))) {
    out.push(`starts: give the first block of each group after the first, ascending (${groups - 1} number(s) for ${groups} groups)`);
  }
  const f = traitsOf(o.method).factors;
  if (o.space === 'factors' && f !== 'stack' && f !== 'svd') {
    out.push(
      `in factors space ${o.method} combines the A's and the B's entry by entry (PEFT), where a weight is no scale of the update; ` +
        'use delta space (or cat or svd in factors space) for per-layer weights',
    );
  }
  return out;
}

export type MergeOptions = z.output<typeof MergeOptionsSchema>;
export type MergeOptionsInput = z.input<typeof MergeOptionsSchema>;

/** Validates a recipe; a bad one throws InvalidInputError naming each wrong field. */
export function parseMergeOptions(input: unknown): MergeOptions {
  const result = MergeOptionsSchema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
  throw new InvalidInputError(`invalid merge options: ${lines.join('; ')}`, result.error.issues);
}
