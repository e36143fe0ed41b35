// The merge job as the API, the worker and the client see it: the request (zod, validated by the API with the
// merge engine's own option schema), the job's data, its progress and result, and the status view.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { MergeOptionsSchema, type MergeOptions } from '../merge/options.js';
import { AdapterNameSchema, CategorySchema } from '../registry/types.js';
import { canonicalJson } from '../util/canonical-json.js';

export const MERGE_QUEUE = 'merge';

export const MergeTargetSchema = z.object({
  adapters: z.array(AdapterNameSchema).min(1).meta({ description: 'registered adapters to merge, in the order of `weights`' }),
  name: AdapterNameSchema.optional().meta({ description: 'name of the result (default: <method>-<short recipe hash>)' }),
  description: z.string().max(2000).optional(),
  category: CategorySchema.optional(),
  replace: z.boolean().default(false).meta({ description: 'replace other content registered under `name`' }),
  registeredBy: z.string().min(1).max(200).optional(),
});

/** POST /v1/merges: the target fields plus the merge options (method, weights, density, ...), flat. */
export const MergeRequestSchema = z.intersection(MergeTargetSchema, MergeOptionsSchema);
export type MergeRequest = z.output<typeof MergeRequestSchema>;
export type MergeRequestInput = z.input<typeof MergeRequestSchema>;

export interface MergeInput {
  name: string;
  sha256: string;
  weight: number;
}

export interface MergeJobData {
  recipeHash: string;
  inputs: MergeInput[];
  options: MergeOptions;
  output: { name: string; description?: string; category?: string; replace: boolean; registeredBy: string };
  /** tells a new job from an existing one returned by BullMQ's deduplication */
  requestId: string;
}

export const MergeProgressSchema = z.object({
  phase: z.string(),
  done: z.number(),
  total: z.number(),
  etaSeconds: z.number().nullable(),
});
export type MergeProgress = z.infer<typeof MergeProgressSchema>;

export const MergeResultSchema = z.object({
  name: z.string(),
  sha256: z.string(),
  status: z.enum(['created', 'replaced', 'unchanged']),
  summary: z.record(z.string(), z.unknown()).optional(),
  /** where the worker's time went: the engine (read, merge, write) and everything around it */
  timings: z.object({ engineSeconds: z.number(), registerSeconds: z.number(), totalSeconds: z.number() }).optional(),
});
export type MergeResult = z.infer<typeof MergeResultSchema>;

export const MERGE_STATES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type MergeState = (typeof MERGE_STATES)[number];

export const MergeStatusSchema = z.object({
  id: z.string(),
  state: z.enum(MERGE_STATES),
  /** the answer to POST only: this recipe was queued or merged already, and this is that job */
  deduplicated: z.boolean().optional(),
  /** the answer to POST only: why this recipe is likely to hurt, and what to try (merge/warnings.ts) */
  warnings: z.array(z.string()).optional(),
  name: z.string().meta({ description: 'the name the result is (or will be) registered under' }),
  method: z.string(),
  adapters: z.array(z.object({ name: z.string(), sha256: z.string(), weight: z.number() })),
  options: z.record(z.string(), z.unknown()),
  recipeHash: z.string(),
  progress: MergeProgressSchema.nullable(),
  attempts: z.number().int(),
  cancelRequested: z.boolean(),
  result: MergeResultSchema.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  createdAt: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  autoEval: z
    .object({
      id: z.string().meta({ description: 'the eval job (GET /v1/evals/{id})' }),
      state: z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']),
      part: z.literal('test'),
      categories: z.array(z.string()),
      worstRetention: z.number().nullable().optional(),
      meanRetention: z.number().nullable().optional(),
      retention: z.record(z.string(), z.number().nullable()).optional().meta({ description: 'per category' }),
      error: z.string().optional(),
    })
    .optional()
    .meta({
      description:
        'completed merges whose inputs have categories with suite items: the retention of the merge on the test part, from an eval queued when it finished (eval.autoEvalMerges)',
    }),
});
export type MergeStatus = z.infer<typeof MergeStatusSchema>;
export type MergeAutoEval = NonNullable<MergeStatus['autoEval']>;

/** Identity of a merge: the inputs by content and every option (defaults included), not the names. */
export function recipeHash(inputs: Array<{ sha256: string }>, options: MergeOptions): string {
  const recipe = { v: 1, inputs: inputs.map((i) => i.sha256), options };
  return createHash('sha256').update(canonicalJson(recipe)).digest('hex');
}

/** BullMQ job id of a recipe (no ':' allowed, not all digits). */
export const jobIdOf = (hash: string) => `merge-${hash.slice(0, 24)}`;

/** The result's name when none is asked for: `<method>-<short recipe hash>`, as a slug. */
export const defaultMergeName = (options: MergeOptions, hash: string) => `${options.method.replace(/_/g, '-')}-${hash.slice(0, 8)}`;
