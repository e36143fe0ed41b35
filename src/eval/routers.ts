// Creating routers (docs/ROUTERS.md): members checked against the registry, calibration prompts taken from the
// suites' calibration part by each member's category (or given per member), their features computed by the
// engine's routing pass, centroids fitted, the record stored. Also the engine's view of the stored routers.
import { z } from 'zod';
import { ConflictError, InvalidInputError } from '../errors.js';
import type { InferenceEngine, RouterResolver, RouterSpec } from '../inference/engine/index.js';
import { DEFAULT_BLEND_MARGIN, DEFAULT_BLEND_WEIGHT, DEFAULT_ROUTING_MARGIN, DEFAULT_ROUTING_RULE, ROUTING_PASSES_AT_ONCE, ROUTING_RULES, fitCentroids, type ModelRoutingRule } from '../inference/engine/routing.js';
import { rebuildFor } from '../inference/engine/lora-pool.js';
import { fitTextCentroids, textFeature } from '../inference/engine/text-features.js';
import type { Registry } from '../registry/registry.js';
import type { RouterRecord, RouterStore } from '../registry/routers.js';
import { AdapterNameSchema } from '../registry/types.js';
import { calibrationItems } from './split.js';
import { BUILTIN_SUITES_DIR, loadSuites } from './suite.js';

export const DEFAULT_CALIBRATION_PER_MEMBER = 5;

export const CreateRouterSchema = z
  .object({
    name: AdapterNameSchema,
    members: z
      .array(
        z.union([
          z.string().min(1),
          z
            .object({
              model: z.string().min(1),
              category: z.string().min(1).max(64).optional(),
              prompts: z.array(z.string().min(1).max(4000)).min(1).max(50).optional(),
            })
            .strict(),
        ]),
      )
      .min(2)
      .max(16)
      .meta({ description: 'adapter or merge names, or {model, category?, prompts?}; category defaults to the adapter\'s registry category' }),
    fallback: z.string().min(1).nullable().optional().meta({ description: 'a merge, an adapter or the base model; default: none (see blend)' }),
    blend: z
      .number()
      .gt(0)
      .max(1.5)
      .nullable()
      .optional()
      .meta({ description: `without a fallback: when no member is clearly nearest, the two nearest answer together, each update times this weight (e.g. ${DEFAULT_BLEND_WEIGHT}); default null: the nearest answers alone` }),
    rule: z.enum(ROUTING_RULES).optional(),
    margin: z
      .number()
      .min(0)
      .max(2)
      .optional()
      .meta({ description: `cosine lead the nearest member needs over the runner-up; less goes to the fallback or the blend (default ${DEFAULT_BLEND_MARGIN} with a blend, else ${DEFAULT_ROUTING_MARGIN})` }),
    calibrationPerMember: z.number().int().min(1).max(50).optional().meta({ description: 'calibration prompts per member taken from the suites (default 5)' }),
    replace: z.boolean().optional(),
    createdBy: z.string().min(1).max(200).optional(),
  })
  .strict();
export type CreateRouterRequest = z.input<typeof CreateRouterSchema>;

export interface RouterServiceOptions {
  engine: InferenceEngine;
  registry: Registry;
  store: RouterStore;
  suitesDir?: string;
}

/** Prompts are asked as one user turn through the chat template, as the bot, the arena and evals ask them. */
const asChat = (prompt: string) => ({ kind: 'chat' as const, messages: [{ role: 'user' as const, content: prompt }] });

export class RouterService {
  constructor(private readonly opts: RouterServiceOptions) {}

  get store(): RouterStore {
    return this.opts.store;
  }

  async create(raw: CreateRouterRequest): Promise<{ status: 'created' | 'replaced'; router: RouterRecord }> {
    const body = CreateRouterSchema.parse(raw);
    const { engine, registry, store } = this.opts;
    if (body.name === engine.modelId || (await registry.find(body.name))) {
      throw new ConflictError(`'${body.name}' is already a model name (an adapter, a merge or the base model): pick another router name`);
    }
    const members = await Promise.all(
      body.members.map(async (m) => {
        const spec = typeof m === 'string' ? { model: m } : m;
        if (await store.find(spec.model)) throw new InvalidInputError(`member '${spec.model}' is a router: members are adapters or merges`);
        const record = await registry.find(spec.model);
        if (!record) throw new InvalidInputError(`member '${spec.model}' is not a registered adapter or merge (GET /v1/adapters lists them)`);
        return { model: spec.model, category: spec.category ?? record.category, prompts: spec.prompts, rank: record.rank };
      }),
    );
    const names = members.map((m) => m.model);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new InvalidInputError(`member '${twice}' is listed twice`);
    const fallback = body.fallback ?? null;
    if (fallback !== null && fallback !== engine.modelId && !(await registry.find(fallback))) {
      throw new InvalidInputError(`fallback '${fallback}' is not a registered merge or adapter, nor the base model '${engine.modelId}'`);
    }
    if (fallback !== null && typeof body.blend === 'number') {
      throw new InvalidInputError('give a fallback or a blend, not both: both answer the prompts no member is clearly nearest to');
    }
    const blend = body.blend ?? null;
    if (blend !== null) {
      // a blend's rank is the sum of its two members' (lora-pool.ts): checked here once, not per request
      const [first, second] = [...members].sort((a, b) => b.rank - a.rank);
      if (first!.rank + second!.rank > engine.spec.maxRank) {
        throw new InvalidInputError(
          `a blend of ${first!.model} and ${second!.model} has rank ${first!.rank + second!.rank}, above the served graph's max rank ${engine.spec.maxRank}: ` +
            `${rebuildFor(first!.rank + second!.rank)}, or give the router a fallback instead of a blend`,
        );
      }
    }
    const withPrompts = members.filter((m) => m.prompts).length;
    if (withPrompts > 0 && withPrompts < members.length) {
      throw new InvalidInputError('give prompts for every member or for none (then the suites calibrate by category)');
    }
    const n = body.calibrationPerMember ?? DEFAULT_CALIBRATION_PER_MEMBER;
    let prompts: string[][];
    let itemIds: string[] | undefined;
    if (withPrompts > 0) {
      prompts = members.map((m) => m.prompts!);
    } else {
      const suites = await loadSuites([], this.opts.suitesDir ?? BUILTIN_SUITES_DIR);
      itemIds = [];
      prompts = members.map((m) => {
        if (!m.category) {
          throw new InvalidInputError(`member '${m.model}' has no category: give one ({"model": "${m.model}", "category": "..."}) or calibration prompts`);
        }
        const items = calibrationItems(suites, m.category, n);
        if (items.length === 0) throw new InvalidInputError(`no suite has items of category '${m.category}' (member '${m.model}'): give calibration prompts`);
        itemIds!.push(...items.map((i) => i.id));
        return items.map((i) => i.prompt);
      });
    }
    const rule = body.rule ?? DEFAULT_ROUTING_RULE;
    const fitted =
      rule === 'text'
        ? fitTextCentroids(prompts.map((list) => list.map((p) => textFeature(engine.promptText(asChat(p))))))
        : fitCentroids(await this.features(prompts, rule));
    const record: RouterRecord = {
      name: body.name,
      baseModel: engine.modelId,
      members: members.map((m) => ({ model: m.model, ...(m.category ? { category: m.category } : {}) })),
      fallback,
      blend,
      rule,
      margin: body.margin ?? (blend !== null ? DEFAULT_BLEND_MARGIN : DEFAULT_ROUTING_MARGIN),
      calibration: { source: withPrompts > 0 ? 'prompts' : 'suites', counts: prompts.map((p) => p.length), ...(itemIds ? { itemIds } : {}) },
      createdBy: body.createdBy ?? 'api',
      createdAt: new Date().toISOString(),
      center: fitted.center,
      centroids: fitted.centroids,
      ...(fitted.dims ? { dims: fitted.dims } : {}),
    };
    const status = await store.save(record, { replace: body.replace });
    return { status, router: record };
  }

  /** Routing features of every prompt, a few at a time (the engine's queue is bounded). */
  private async features(prompts: string[][], rule: ModelRoutingRule): Promise<Float32Array[][]> {
    const flat = prompts.flatMap((list, m) => list.map((p) => ({ m, p })));
    const out: Float32Array[][] = prompts.map(() => []);
    for (let i = 0; i < flat.length; i += ROUTING_PASSES_AT_ONCE) {
      const chunk = flat.slice(i, i + ROUTING_PASSES_AT_ONCE);
      const got = await Promise.all(chunk.map(({ p }) => this.opts.engine.routeFeatures(asChat(p), rule)));
      chunk.forEach(({ m }, j) => out[m]!.push(got[j]!));
    }
    return out;
  }
}

/** A stored router as the engine serves it. */
function routerSpec(record: RouterRecord): RouterSpec {
  return {
    name: record.name,
    rule: record.rule,
    margin: record.margin,
    members: record.members,
    fallback: record.fallback,
    blend: record.blend ?? null,
    fitted: { center: record.center, centroids: record.centroids, ...(record.dims ? { dims: record.dims } : {}) },
    created: Math.floor(Date.parse(record.createdAt) / 1000),
  };
}

/** The engine's routers: looked up in Redis per request, so a router serves as soon as it is stored. */
export function storedRouters(store: RouterStore): RouterResolver {
  return {
    resolve: async (name) => {
      const record = await store.current(name);
      return record ? routerSpec(record) : null;
    },
    list: async () => (await store.list()).map(routerSpec),
  };
}
