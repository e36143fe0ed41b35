// Eval and sweep jobs on the BullMQ queue `eval`: what a job carries, its Redis keys, and the status views the API
// returns (zod, so /openapi.json documents them and the client imports their types).
//
// A job carries everything it needs, resolved when it was accepted (the suite items, the sweep's points), so a
// restart or a retry runs exactly what was asked even if a suite file changed meanwhile.
import { z } from 'zod';
import type { MergeOptions } from '../merge/options.js';
import { EvalReportSchema, ExpertInfoSchema } from './report.js';
import type { EvalFormat } from './evaluate.js';
import type { EvalPart } from './split.js';
import type { SuiteItem } from './suite.js';

export const EVAL_QUEUE = 'eval';

export interface EvalJobData {
  kind: 'eval';
  items: SuiteItem[];
  /** adapters and merges to score; the base model and the experts are added when the job runs */
  models: string[];
  experts?: Record<string, string>;
  format: EvalFormat;
  checks: boolean;
  maxTokens: number;
  /** suite names, for the status view */
  suites: string[];
  /** the part of the suites in `items` (absent in jobs queued before parts existed: all) */
  part?: EvalPart;
  /** routers among `models`: member → its category (routing accuracy is measured against it) */
  routers?: Record<string, Record<string, string | null>>;
}

export interface SweepJobData {
  kind: 'sweep';
  items: SuiteItem[];
  /** the adapters merged at every point, in weight order */
  adapters: string[];
  experts?: Record<string, string>;
  format: EvalFormat;
  suites: string[];
  search: 'grid' | 'random' | 'cmaes';
  /** grid and random: every point; cmaes: none (the optimizer asks for them as it goes) */
  points: MergeOptions[];
  /** cmaes: what is tuned and how; `items` are then the tune part (calibration and dev) followed by the test part */
  tune?: TuneSpec;
  /** random search: the samples asked for (more than `points` when the space has fewer distinct points) */
  requestedPoints?: number;
}

export interface TuneSpec {
  optimizer: 'cmaes';
  /** merges evaluated */
  budget: number;
  seed: number;
  /** the recipe of every point but its weights (method, space, density, …) */
  base: MergeOptions;
  /** groups of blocks with a weight per adapter each; null: one weight per adapter */
  layerGroups: number | null;
  /** items[0, tuneItems) are the tune part (tuned on), the rest the test part (reported) */
  tuneItems: number;
  /** jobs queued before the tune part: items[0, devItems) are their dev part (read by tuneItemsOf) */
  devItems?: number;
}

export type EvalQueueJobData = EvalJobData | SweepJobData;

export const JOB_STATES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

export const EvalIdSchema = z.string().regex(/^eval-[0-9a-f]{24}$/, 'an eval id looks like "eval-" and 24 hex digits');
export const SweepIdSchema = z.string().regex(/^sweep-[0-9a-f]{24}$/, 'a sweep id looks like "sweep-" and 24 hex digits');

export const JobProgressSchema = z.object({
  phase: z.string().meta({ description: 'baseline, merge, score or generate' }),
  done: z.number(),
  total: z.number(),
  /** sweeps: points finished (completed or failed) of all points */
  points: z.object({ done: z.number().int(), total: z.number().int() }).optional(),
});
export type JobProgress = z.infer<typeof JobProgressSchema>;

const JobCommon = {
  state: z.enum(JOB_STATES),
  progress: JobProgressSchema.nullable(),
  attempts: z.number().int(),
  cancelRequested: z.boolean(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  createdAt: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
};

export const EvalStatusSchema = z.object({
  id: z.string(),
  kind: z.literal('eval'),
  ...JobCommon,
  suites: z.array(z.string()),
  items: z.number().int(),
  models: z.array(z.string()),
  report: EvalReportSchema.optional(),
});
export type EvalStatus = z.infer<typeof EvalStatusSchema>;

export const SweepCategoryScoreSchema = z.object({ perplexity: z.number(), retention: z.number().nullable() });

export const SweepPointResultSchema = z.object({
  index: z.number().int(),
  label: z.string().meta({ description: 'e.g. "ties d=0.3 w=0.25"' }),
  options: z.record(z.string(), z.unknown()).meta({ description: 'the merge options of this point, weights included' }),
  state: z.enum(['completed', 'failed']),
  /** the registered merge this point scored */
  adapter: z.string().optional(),
  mergeId: z.string().optional(),
  categories: z.record(z.string(), SweepCategoryScoreSchema).optional(),
  worstRetention: z.number().nullable().optional(),
  meanRetention: z.number().nullable().optional(),
  meanNll: z.number().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  finishedAt: z.string(),
});
export type SweepPointResult = z.infer<typeof SweepPointResultSchema>;

export const SweepBaselineSchema = z.object({
  categories: z.array(z.string()),
  experts: z.record(z.string(), ExpertInfoSchema),
  /** base model and experts: perplexity per category */
  perplexity: z.record(z.string(), z.record(z.string(), z.number())),
});
export type SweepBaseline = z.infer<typeof SweepBaselineSchema>;

export const TuneResultSchema = z.object({
  optimizer: z.literal('cmaes'),
  budget: z.number().int(),
  layerGroups: z.number().int().nullable(),
  tuneItems: z.number().int().meta({ description: 'items tuned on: the calibration and dev parts' }),
  testItems: z.number().int(),
  /** the best point by its worst retention on the tune part, scored on the test part */
  test: z
    .object({
      point: z.number().int(),
      adapter: z.string(),
      categories: z.record(z.string(), SweepCategoryScoreSchema),
      worstRetention: z.number().nullable(),
      meanRetention: z.number().nullable(),
    })
    .nullable(),
});
export type TuneResult = z.infer<typeof TuneResultSchema>;

export const SweepStatusSchema = z.object({
  id: z.string(),
  kind: z.literal('sweep'),
  ...JobCommon,
  search: z.enum(['grid', 'random', 'cmaes']),
  adapters: z.array(z.string()),
  suites: z.array(z.string()),
  items: z.number().int(),
  totalPoints: z.number().int(),
  requestedPoints: z.number().int().meta({
    description: 'points asked for: the samples of a random search, else the grid size; more than totalPoints when the space has fewer distinct points',
  }),
  baseline: SweepBaselineSchema.nullable(),
  /** finished points, best first: by the worst category's retention, then the mean */
  ranking: z.array(SweepPointResultSchema),
  /** the best point's merge, ready to be kept under a name: POST /v1/sweeps/{id}/register */
  best: SweepPointResultSchema.nullable(),
  /** cmaes: the points above are scored on the tune part; the best one's score on the test part once finished */
  tune: TuneResultSchema.nullable().optional(),
});
export type SweepStatus = z.infer<typeof SweepStatusSchema>;

export const RegisterBestRequestSchema = z.object({
  name: z.string().min(1).max(64).meta({ description: 'the name to register the merge under (a slug)' }),
  point: z.number().int().min(0).optional().meta({ description: 'a point index instead of the best' }),
  description: z.string().max(2000).optional(),
  category: z.string().min(1).max(64).optional(),
  replace: z.boolean().default(false),
});
export type RegisterBestRequest = z.output<typeof RegisterBestRequestSchema>;

/** Redis keys of the eval part, under the configured prefix. */
export const evalKeys = (prefix: string) => ({
  cancel: (id: string) => `${prefix}:eval:cancel:${id}`,
  control: `${prefix}:eval:control`,
  /** statuses of jobs cancelled before they started (their BullMQ job is removed) */
  cancelled: `${prefix}:eval:cancelled`,
  /** a sweep's progress: field `baseline` and one field `point:<index>` per finished point (a tuned one: `test` too) */
  sweep: (id: string) => `${prefix}:eval:sweep:${id}`,
});
