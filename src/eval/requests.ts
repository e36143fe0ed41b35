// Eval and sweep requests as the API validates them (and /openapi.json documents them); the client imports the
// inferred types.
import { z } from 'zod';
import { MERGE_METHODS } from '../merge/options.js';
import { EVAL_PARTS } from './split.js';
import { DEFAULT_BUDGET } from './tune-start.js';
import { CategorySchema, SuiteItemSchema } from './suite.js';

const ModelNameSchema = z.string().min(1).max(200);

/** What an eval scores and how; shared by evals and sweeps. */
export const ScoringOptionsSchema = z.object({
  suites: z
    .array(z.string().min(1).max(100))
    .optional()
    .meta({ description: 'suite names (files in the suites directory); default: every suite there, unless `items` is given' }),
  items: z
    .array(SuiteItemSchema)
    .min(1)
    .max(5_000)
    .optional()
    .meta({ description: 'inline suite items, instead of or besides named suites' }),
  experts: z
    .record(CategorySchema, ModelNameSchema)
    .optional()
    .meta({ description: 'category → expert adapter, overriding the registry categories' }),
  format: z
    .enum(['chat', 'raw'])
    .default('chat')
    .meta({ description: 'chat: the prompt is a user turn in the chat template and the reference the answer; raw: prompt text, then reference' }),
  checks: z
    .boolean()
    .default(false)
    .meta({ description: 'also generate an answer per item (greedy) and apply its checks' }),
  maxTokens: z.number().int().min(1).max(4_096).default(256).meta({ description: 'answer length when generating for checks' }),
});
export type ScoringOptions = z.output<typeof ScoringOptionsSchema>;

export const EvalRequestSchema = ScoringOptionsSchema.extend({
  models: z
    .array(ModelNameSchema)
    .max(64)
    .optional()
    .meta({ description: 'adapters, merges and routers to score (the base model and each category expert are always added); default: every registered adapter' }),
  part: z
    .enum(EVAL_PARTS)
    .optional()
    .meta({ description: 'which part of the suites to score (docs/eval.md): calibration, dev and test split each category; tune = calibration and dev (what a merge search tunes on). Default test when a router is scored (its calibration items are never scored), else all' }),
});
export type EvalRequest = z.output<typeof EvalRequestSchema>;
export type EvalRequestInput = z.input<typeof EvalRequestSchema>;

// ---- sweeps

const range = z
  .object({ min: z.number(), max: z.number() })
  .refine((r) => r.min <= r.max, 'min must be <= max')
  .meta({ description: 'a range sampled uniformly (random search only)' });

export const SweepSpaceSchema = z.object({
  method: z.array(z.enum(MERGE_METHODS)).min(1).optional().meta({ description: 'default: linear, ties, dare_ties' }),
  density: z
    .union([z.array(z.number().gt(0).max(1)).min(1), range])
    .optional()
    .meta({ description: 'for ties, dare_*, magnitude_prune; default [0.3, 0.6]' }),
  weights: z
    .union([z.array(z.union([z.number(), z.array(z.number())])).min(1), range])
    .optional()
    .meta({ description: 'a number is the weight of every adapter; an array gives one per adapter. Default [1/n, 2/n]' }),
  rank: z.array(z.number().int().positive()).min(1).optional().meta({ description: 'rank of the result (not for cat); default: the method default' }),
});
export type SweepSpace = z.infer<typeof SweepSpaceSchema>;

/** Merge options fixed for every point of a sweep. */
const FixedOptionsSchema = z.object({
  space: z.enum(['delta', 'factors']).optional(),
  majoritySignMethod: z.enum(['total', 'frequency']).optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  trimScope: z.enum(['tensor', 'adapter']).optional(),
  dtype: z.enum(['F32', 'F16', 'BF16']).optional(),
});

export const SweepRequestSchema = ScoringOptionsSchema.extend({
  adapters: z
    .array(z.string().min(1).max(64))
    .min(2)
    .max(16)
    .optional()
    .meta({ description: 'adapters to merge; default: the category experts, in suite order' }),
  search: z
    .enum(['grid', 'random', 'cmaes'])
    .default('grid')
    .meta({ description: 'grid: every combination; random: `samples` points; cmaes: weights tuned by CMA-ES on the tune part of the suites (calibration and dev), the best reported on the test part' }),
  budget: z.number().int().min(2).max(256).optional().meta({ description: `cmaes: merges to evaluate (default ${DEFAULT_BUDGET})` }),
  perLayer: z
    .boolean()
    .default(false)
    .meta({ description: 'cmaes: tune a weight per adapter per layer group (early, middle, late blocks) instead of one per adapter' }),
  layerGroups: z.number().int().min(2).max(8).default(3).meta({ description: 'cmaes with perLayer: groups of blocks (equal shares of the layer range)' }),
  space: SweepSpaceSchema.default({}),
  samples: z.number().int().min(1).max(256).optional().meta({ description: 'random search: points to try (default 16)' }),
  seed: z.number().int().min(0).max(0xffffffff).default(0).meta({ description: 'random search: same seed, same points' }),
  options: FixedOptionsSchema.default({}),
  maxPoints: z.number().int().min(1).max(256).default(64).meta({ description: 'refuse a grid larger than this' }),
});
export type SweepRequest = z.output<typeof SweepRequestSchema>;
export type SweepRequestInput = z.input<typeof SweepRequestSchema>;
