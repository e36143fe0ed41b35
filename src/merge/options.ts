// The merge recipe: one zod schema shared by the CLI, the API and the bot, so every front door accepts and refuses
// the same requests with the same messages, checked against the METHODS table (methods.ts). Semantics:
// docs/MERGE.md.
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { DEFAULT_DENSITY, MERGE_METHODS, PRUNING_METHODS, listMethods, takes, traitsOf, type MergeMethod } from './methods.js';

export * from './methods.js';

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
