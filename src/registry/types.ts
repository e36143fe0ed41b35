// What the registry records about an adapter, as zod schemas: the API documents and validates with them, the
// client imports the inferred types.
import { z } from 'zod';

export const SLUG_RE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

export const AdapterNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(SLUG_RE, 'a name is a slug: lowercase letters, digits and single hyphens, e.g. "linux-commands"')
  .meta({ description: 'unique slug, e.g. "python-automation"' });

/** Suggests a slug for a name that is not one ("Linux_Commands" → "linux-commands"). */
export function slugify(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '');
}

export const CategorySchema = z.string().min(1).max(64).meta({ description: 'optional skill category, e.g. "code"' });

export const MergeInputSchema = z.object({ name: z.string(), sha256: z.string(), weight: z.number() });

export const AdapterRecordSchema = z.object({
  name: z.string(),
  /** content address: sha256 over the canonical config and the weights file */
  sha256: z.string(),
  baseModel: z.string().nullable(),
  rank: z.number().int().meta({ description: 'LoRA rank r (the largest when rank_pattern varies it)' }),
  alpha: z.number(),
  targetModules: z.array(z.string()),
  dtype: z.string(),
  modules: z.number().int().meta({ description: 'number of adapted modules' }),
  parameters: z.number().int(),
  bytes: z.number().int(),
  registeredBy: z.string(),
  createdAt: z.string().meta({ description: 'ISO 8601' }),
  description: z.string().optional(),
  category: z.string().optional(),
  /** merges only: what it was built from and how (reproducible from these) */
  inputs: z.array(MergeInputSchema).optional(),
  recipe: z.record(z.string(), z.unknown()).optional(),
  recipeHash: z.string().optional(),
  /** merges only: overall diagnostics (per-module ones are in the detail view) */
  summary: z.record(z.string(), z.unknown()).optional(),
  /** what reading the adapter noticed without refusing it (e.g. keys wrapped twice, read unwrapped) */
  warnings: z.array(z.string()).optional(),
});
export type AdapterRecord = z.infer<typeof AdapterRecordSchema>;

export const AdapterDetailSchema = AdapterRecordSchema.extend({
  diagnostics: z.unknown().optional(),
  moduleShapes: z.record(z.string(), z.object({ kind: z.string(), inFeatures: z.number(), outFeatures: z.number(), rank: z.number() })),
});
export type AdapterDetail = z.infer<typeof AdapterDetailSchema>;

export type ModuleShapes = AdapterDetail['moduleShapes'];

export const RegisterResultSchema = z.object({
  status: z.enum(['created', 'replaced', 'unchanged']),
  adapter: AdapterRecordSchema,
});
export type RegisterResult = z.infer<typeof RegisterResultSchema>;

export const CompatibilitySchema = z.object({
  name: z.string(),
  compatible: z.boolean(),
  /** why not, or caveats (unknown base model) */
  reasons: z.array(z.string()),
  sharedModules: z.number().int(),
});
export type Compatibility = z.infer<typeof CompatibilitySchema>;

export interface RegistryEvent {
  type: 'created' | 'replaced' | 'removed';
  name: string;
  sha256: string;
}
