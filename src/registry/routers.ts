// Router records (docs/ROUTERS.md): a router is a registered model that answers each request with one of its
// members (adapters or merges), chosen per prompt by nearest centroid of a base-model feature. The record holds
// everything serving needs (members, rule, margin, fallback, the fitted centroids) and what calibrated it (so an
// eval never scores a calibration prompt). One Redis hash `<prefix>:registry:routers`, name → JSON, and beside it
// `<prefix>:registry:routers:rev`, name → a revision written with every save, so that serving reads a few bytes per
// request and parses a record (hundreds of KB for a `text` router) only when it changed.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ConflictError, NotFoundError } from '../errors.js';
import { AdapterNameSchema } from './types.js';

const RouterMemberSchema = z.object({
  model: z.string().meta({ description: 'an adapter or merge name' }),
  category: z.string().optional().meta({ description: 'the skill it answers for (routing accuracy is measured against it)' }),
});

const RouterCalibrationSchema = z.object({
  source: z.enum(['suites', 'prompts']),
  /** calibration prompts per member, in member order */
  counts: z.array(z.number().int()),
  /** suites only: the ids of the suite items used (never scored by an eval of this router) */
  itemIds: z.array(z.string()).optional(),
});

export const RouterRecordSchema = z.object({
  name: AdapterNameSchema,
  baseModel: z.string(),
  members: z.array(RouterMemberSchema),
  fallback: z.string().nullable().meta({ description: 'the model answering when no member is clearly nearest; null: see blend (or the nearest member)' }),
  blend: z
    .number()
    .nullable()
    .optional()
    .meta({ description: 'without a fallback: the two nearest members answer together, each update times this weight, when no member is clearly nearest; null or absent: the nearest answers alone' }),
  rule: z.enum(['text', 'value-last', 'value-mid', 'logprobs']),
  margin: z.number(),
  calibration: RouterCalibrationSchema,
  createdBy: z.string(),
  createdAt: z.string().meta({ description: 'ISO 8601' }),
  /** the fitted router: centring vector and one unit centroid per member */
  center: z.array(z.number()),
  centroids: z.array(z.array(z.number())),
  /** `text` rule: the hash buckets of the centroids' coordinates, ascending (text-features.ts projects by merge join) */
  dims: z
    .array(z.number().int())
    .refine((d) => d.every((b, i) => i === 0 || d[i - 1]! < b), 'text buckets out of order: recreate the router')
    .optional(),
});
export type RouterRecord = z.infer<typeof RouterRecordSchema>;

/** What listings show: the record without its vectors. */
export type RouterSummary = Omit<RouterRecord, 'center' | 'centroids' | 'dims'>;

export function summarize(record: RouterRecord): RouterSummary {
  const { center: _c, centroids: _k, dims: _d, ...rest } = record;
  void _c;
  void _k;
  void _d;
  return rest;
}

export class RouterStore {
  private readonly key: string;
  private readonly revKey: string;
  /** records as last parsed, with the revision they were read at */
  private readonly parsed = new Map<string, { rev: string; record: RouterRecord }>();

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = `${prefix}:registry:routers`;
    this.revKey = `${this.key}:rev`;
  }

  async find(name: string): Promise<RouterRecord | undefined> {
    const json = await this.redis.hget(this.key, name);
    return json ? parseRecord(json) : undefined;
  }

  /**
   * The router of that name as `find` reads it, for every request to the server: one round trip of a few bytes,
   * and the record read and parsed again only when its revision changed.
   */
  async current(name: string): Promise<RouterRecord | undefined> {
    const [rev, length] = (await this.redis.multi().hget(this.revKey, name).hstrlen(this.key, name).exec())!.map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as [string | null, number];
    if (length === 0) {
      this.parsed.delete(name);
      return undefined;
    }
    const cached = this.parsed.get(name);
    if (rev !== null && cached?.rev === rev) return cached.record;
    // a record saved before revisions existed gets one, so that the next request finds it cached
    if (rev === null) await this.redis.hsetnx(this.revKey, name, randomUUID());
    const [json, now] = (await this.redis.multi().hget(this.key, name).hget(this.revKey, name).exec())!.map(([err, value]) => {
      if (err) throw err;
      return value;
    }) as [string | null, string | null];
    if (!json) return undefined;
    const record = parseRecord(json);
    if (now !== null) this.parsed.set(name, { rev: now, record });
    return record;
  }

  async get(name: string): Promise<RouterRecord> {
    const found = await this.find(name);
    if (!found) throw new NotFoundError(`router '${name}' does not exist: GET /v1/routers lists the routers`);
    return found;
  }

  /** Every router, each parsed again only when it changed (as `current`): the bot's autocomplete and /v1/models list often. */
  async list(): Promise<RouterRecord[]> {
    const names = await this.redis.hkeys(this.key);
    const records = await Promise.all(names.map((name) => this.current(name)));
    return records.filter((r): r is RouterRecord => r !== undefined).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Stores a new router; a name in use is a conflict unless `replace`. */
  async save(record: RouterRecord, options: { replace?: boolean } = {}): Promise<'created' | 'replaced'> {
    const json = JSON.stringify(RouterRecordSchema.parse(record));
    if (options.replace) {
      const [[err, isNew]] = (await this.redis.multi().hset(this.key, record.name, json).hset(this.revKey, record.name, randomUUID()).exec())!;
      if (err) throw err;
      return isNew === 1 ? 'created' : 'replaced';
    }
    const created = await this.redis.hsetnx(this.key, record.name, json);
    if (created !== 1) throw new ConflictError(`router '${record.name}' exists: pick another name, or replace it`);
    await this.redis.hset(this.revKey, record.name, randomUUID());
    return 'created';
  }

  async remove(name: string): Promise<RouterRecord> {
    const found = await this.get(name);
    await this.redis.multi().hdel(this.key, name).hdel(this.revKey, name).exec();
    return found;
  }
}

function parseRecord(json: string): RouterRecord {
  return RouterRecordSchema.parse(JSON.parse(json));
}
