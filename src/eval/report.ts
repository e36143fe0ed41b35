// The report of an eval as the API returns it and the client reads it: zod schemas (documented in /openapi.json)
// and their inferred types.
import { z } from 'zod';
import { EVAL_PARTS } from './split.js';

export const EVAL_MODEL_KINDS = ['base', 'adapter', 'merge', 'router'] as const;
export type EvalModelKind = (typeof EVAL_MODEL_KINDS)[number];

export const CategoryScoreSchema = z.object({
  items: z.number().int(),
  tokens: z.number().int().meta({ description: 'reference tokens scored' }),
  meanNll: z.number().meta({ description: 'item-weighted: mean over items of the mean negative log-likelihood per reference token (nats)' }),
  perplexity: z.number().meta({ description: 'exp(meanNll), item-weighted: retention is computed from this one' }),
  tokenNll: z.number().meta({ description: 'token-weighted: total negative log-likelihood over total reference tokens (nats)' }),
  tokenPerplexity: z.number().meta({ description: 'exp(tokenNll): long answers weigh more; shown beside, not used by retention' }),
  passRate: z.number().nullable().meta({ description: 'share of items whose generated answer passed its checks; null when not checked' }),
  retention: z
    .number()
    .nullable()
    .meta({ description: '(ppl_base − ppl_model) / (ppl_base − ppl_expert); 1 keeps the skill, 0 lost it; null when undefined (see note)' }),
  note: z.string().optional(),
});
export type CategoryScore = z.infer<typeof CategoryScoreSchema>;

export const OverallScoreSchema = z.object({
  meanNll: z.number().meta({ description: 'mean over categories of their item-weighted meanNll' }),
  perplexity: z.number().meta({ description: 'exp(meanNll)' }),
  tokens: z.number().int().meta({ description: 'reference tokens scored over all categories' }),
  tokenNll: z.number().meta({ description: 'total negative log-likelihood over all reference tokens' }),
  tokenPerplexity: z.number().meta({ description: 'exp(tokenNll)' }),
  passRate: z.number().nullable(),
  worstRetention: z.number().nullable(),
  meanRetention: z.number().nullable(),
  retainedCategories: z.number().int().meta({ description: 'categories where retention is defined' }),
});

export const ModelReportSchema = z.object({
  model: z.string(),
  kind: z.enum(EVAL_MODEL_KINDS),
  category: z.string().optional(),
  categories: z.record(z.string(), CategoryScoreSchema),
  overall: OverallScoreSchema,
});
export type ModelReport = z.infer<typeof ModelReportSchema>;

export const RoutingScoreSchema = z.object({
  items: z.number().int(),
  accuracy: z.number().meta({ description: 'share of items routed to a member of their category' }),
  fallbacks: z.number().int().meta({ description: 'items that went to the fallback (counted as not routed right)' }),
  blends: z.number().int().optional().meta({ description: 'items answered by a blend of the two nearest members (counted as not routed right)' }),
  perCategory: z.record(z.string(), z.number()),
  /** items per member chosen */
  chosen: z.record(z.string(), z.number().int()),
});
export type RoutingScore = z.infer<typeof RoutingScoreSchema>;

export const ExpertInfoSchema = z.object({ model: z.string().nullable(), note: z.string().nullable() });
export type ExpertInfo = z.infer<typeof ExpertInfoSchema>;

export const EvalReportSchema = z.object({
  baseModel: z.string(),
  format: z.enum(['chat', 'raw']),
  checks: z.boolean(),
  categories: z.array(z.string()),
  experts: z.record(z.string(), ExpertInfoSchema),
  items: z.array(z.object({ id: z.string(), category: z.string() })),
  models: z.array(ModelReportSchema),
  /** per model, each item's mean NLL, aligned with `items` */
  itemNll: z.record(z.string(), z.array(z.number())),
  timings: z.object({ scoreSeconds: z.number(), generateSeconds: z.number(), tokensScored: z.number().int() }),
  part: z.enum(EVAL_PARTS).optional().meta({ description: 'the part of the suites scored: tune = calibration and dev (calibration items are never scored for a router)' }),
  routing: z
    .record(z.string(), RoutingScoreSchema)
    .optional()
    .meta({ description: 'per router: how often the member chosen was the expert of the item\'s category' }),
});
export type EvalReport = z.infer<typeof EvalReportSchema>;
