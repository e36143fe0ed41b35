// The adapter registry: metadata in Redis under `<prefix>:registry:*`, files in the content-addressed store.
// Registering: stage → validate (formats) → hash → store (under a per-content lock) → one Lua script records the
// name. A crash between storing and recording leaves only an unreferenced store dir, which `sweep` removes; a
// crash before storing leaves only a staging dir. Every change is appended to a Redis stream (`subscribe`), so
// the inference engine can serve a merge by name as soon as it is registered.
import { copyFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.js';
import { sameBaseModel } from '../formats/peft.js';
import type { Logger } from '../util/log.js';
import { describeAdapter } from './describe.js';
import { withLock } from './lock.js';
import { REGISTER, REMOVE } from './scripts.js';
import type { AdapterStore} from './store.js';
import { contentHash } from './store.js';
import {
  AdapterNameSchema,
  slugify,
  type AdapterDetail,
  type AdapterRecord,
  type Compatibility,
  type ModuleShapes,
  type RegisterResult,
  type RegistryEvent,
} from './types.js';

export interface RegisterMeta {
  name: string;
  registeredBy: string;
  description?: string;
  category?: string;
  /** replace another adapter registered under this name (otherwise that is a 409) */
  replace?: boolean;
  /** what the user sent (a path, "upload"): named in error messages instead of the staging dir */
  source?: string;
  /** merges: inputs, recipe, its hash, overall and per-module diagnostics */
  inputs?: AdapterRecord['inputs'];
  recipe?: Record<string, unknown>;
  recipeHash?: string;
  summary?: Record<string, unknown>;
  diagnostics?: unknown;
}

export interface RegistryOptions {
  redis: Redis;
  /** the configured Redis prefix; registry keys live under `<prefix>:registry:` */
  prefix: string;
  store: AdapterStore;
  log: Logger;
}

export class Registry {
  readonly store: AdapterStore;
  private readonly redis: Redis;
  private readonly log: Logger;
  private readonly keys: string[];
  private readonly k: { adapters: string; details: string; refs: string; shapes: string; recipes: string; events: string; version: string; lock: string };
  /** the list as of a registry version: listing is the hot read (bot autocomplete, UIs), changes are rare */
  private cache: { version: string; records: AdapterRecord[]; json: Buffer } | undefined;

  constructor(options: RegistryOptions) {
    this.redis = options.redis;
    this.store = options.store;
    this.log = options.log;
    const p = `${options.prefix}:registry`;
    this.k = {
      adapters: `${p}:adapters`,
      details: `${p}:details`,
      refs: `${p}:refs`,
      shapes: `${p}:shapes`,
      recipes: `${p}:recipes`,
      events: `${p}:events`,
      version: `${p}:version`,
      lock: `${p}:lock`,
    };
    this.keys = [this.k.adapters, this.k.details, this.k.refs, this.k.shapes, this.k.recipes, this.k.events, this.k.version];
  }

  get eventsKey(): string {
    return this.k.events;
  }

  /** Every adapter, by name. Served from memory while the registry's version is unchanged (one GET). */
  async list(): Promise<AdapterRecord[]> {
    return (await this.snapshot()).records;
  }

  /** The list and its JSON form `{"adapters": [...]}`, ready to send. */
  async snapshot(): Promise<{ version: string; records: AdapterRecord[]; json: Buffer }> {
    const version = (await this.redis.get(this.k.version)) ?? '0';
    if (this.cache?.version === version) return this.cache;
    // read the version first: a change in between makes this copy newer than its tag, never older
    const values = await this.redis.hvals(this.k.adapters);
    const records = values.map((v) => JSON.parse(v) as AdapterRecord).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.cache = { version, records, json: Buffer.from(JSON.stringify({ adapters: records })) };
    return this.cache;
  }

  async find(name: string): Promise<AdapterRecord | undefined> {
    const value = await this.redis.hget(this.k.adapters, name);
    return value ? (JSON.parse(value) as AdapterRecord) : undefined;
  }

  /** The record, or NotFoundError naming the adapters that are registered. */
  async record(name: string): Promise<AdapterRecord> {
    const found = await this.find(name);
    if (found) return found;
    const names = (await this.redis.hkeys(this.k.adapters)).sort();
    throw new NotFoundError(
      names.length === 0
        ? `no adapter named "${name}": none is registered yet (POST /v1/adapters or \`loraforge adapters register\`)`
        : `no adapter named "${name}"; registered: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''}`,
    );
  }

  async get(name: string): Promise<AdapterDetail> {
    const record = await this.record(name);
    const [details, shapes] = await Promise.all([this.redis.hget(this.k.details, name), this.redis.hget(this.k.shapes, record.sha256)]);
    return {
      ...record,
      ...(details ? { diagnostics: JSON.parse(details) as unknown } : {}),
      moduleShapes: shapes ? (JSON.parse(shapes) as ModuleShapes) : {},
    };
  }

  /** The adapter's PEFT dir in the store. */
  async pathOf(name: string): Promise<string> {
    return this.store.pathOf((await this.record(name)).sha256);
  }

  /** The merge registered from this recipe, if any. */
  async byRecipe(recipeHash: string): Promise<AdapterRecord | undefined> {
    const name = await this.redis.hget(this.k.recipes, recipeHash);
    return name ? this.find(name) : undefined;
  }

  /**
   * Registers the PEFT dir staged at `stagedDir` (inside the store's tmp area; it is consumed). Validates it,
   * stores its files by content and records the name. `staged.weightsSha256`: the weights' sha256 computed while
   * staging them (trusted: only our own staging code passes it), which saves reading the file again. Same content under the same name: unchanged; other
   * content under a taken name: ConflictError unless `replace`.
   */
  async registerStaged(stagedDir: string, meta: RegisterMeta, staged: { weightsSha256?: string } = {}): Promise<RegisterResult> {
    try {
      return await this.registerStagedUnsafe(stagedDir, meta, staged.weightsSha256);
    } catch (err) {
      // name what the user sent, not our staging dir
      if (err instanceof Error) err.message = err.message.replaceAll(stagedDir, meta.source ?? 'adapter');
      throw err;
    } finally {
      await rm(stagedDir, { recursive: true, force: true });
    }
  }

  private async registerStagedUnsafe(stagedDir: string, meta: RegisterMeta, weightsSha256: string | undefined): Promise<RegisterResult> {
    const name = validName(meta.name);
    const facts = await describeAdapter(stagedDir);
    const sha256 = await contentHash(stagedDir, weightsSha256);
    const existing = await this.find(name);
    if (existing && existing.sha256 !== sha256 && !meta.replace) throw conflict(existing);
    if (existing && existing.sha256 === sha256) {
      // the record outlived its files (a data dir wiped or swapped under the same Redis): this registration has them
      if (!(await this.store.has(sha256))) {
        await withLock(this.redis, `${this.k.lock}:${sha256}`, () => this.store.put(sha256, stagedDir));
        this.log.warn({ name, sha256 }, 'adapter files were missing from the data dir: restored from this registration');
      }
      return { status: 'unchanged', adapter: existing };
    }

    const { moduleShapes, ...recordFacts } = facts;
    const record: AdapterRecord = {
      name,
      sha256,
      ...recordFacts,
      registeredBy: meta.registeredBy,
      createdAt: new Date().toISOString(),
      description: meta.description,
      category: meta.category,
      inputs: meta.inputs,
      recipe: meta.recipe,
      recipeHash: meta.recipeHash,
      summary: meta.summary,
    };
    const [status, stored, orphan] = await withLock(this.redis, `${this.k.lock}:${sha256}`, async () => {
      await this.store.put(sha256, stagedDir);
      const result = (await this.redis.eval(
        REGISTER,
        this.keys.length,
        ...this.keys,
        name,
        JSON.stringify(record),
        sha256,
        meta.replace ? '1' : '0',
        meta.diagnostics === undefined ? '' : JSON.stringify(meta.diagnostics),
        JSON.stringify(moduleShapes),
        meta.recipeHash ?? '',
      )) as [string, string, string];
      // lost a race to another registration of this name: our files may be referenced by nobody
      if (result[0] === 'conflict') await this.deleteIfUnreferenced(sha256, true);
      return result;
    });
    if (status === 'conflict') throw conflict(JSON.parse(stored) as AdapterRecord);
    if (orphan) await this.deleteIfUnreferenced(orphan);
    this.log.info({ name, sha256, status }, 'adapter registered');
    return { status: status as RegisterResult['status'], adapter: JSON.parse(stored) as AdapterRecord };
  }

  /**
   * Registers the content of the adapter `source` under another name too, with its recipe and diagnostics (a
   * sweep's best point, a repeated merge recipe asked for under a new name). The files are copied through
   * staging like any registration, so the store's invariants hold.
   */
  async registerCopy(source: string, meta: Omit<RegisterMeta, 'inputs' | 'recipe' | 'recipeHash' | 'summary' | 'diagnostics' | 'source'>): Promise<RegisterResult> {
    const detail = await this.get(source);
    const staged = await this.store.stagingDir('copy');
    try {
      const from = this.store.pathOf(detail.sha256);
      for (const file of await readdir(from)) await copyFile(path.join(from, file), path.join(staged, file));
    } catch (err) {
      await rm(staged, { recursive: true, force: true });
      throw err;
    }
    return this.registerStaged(staged, {
      ...meta,
      source,
      inputs: detail.inputs,
      recipe: detail.recipe,
      recipeHash: detail.recipeHash,
      summary: detail.summary,
      diagnostics: detail.diagnostics,
    });
  }

  /** Removes a name; refused while a registered merge was built from its content, unless `force`. */
  async remove(name: string, options: { force?: boolean } = {}): Promise<AdapterRecord> {
    const [status, value, orphan] = (await this.redis.eval(REMOVE, this.keys.length, ...this.keys, name, options.force ? '1' : '0')) as [
      string,
      string,
      string,
    ];
    if (status === 'missing') await this.record(name); // throws NotFoundError with the list
    if (status === 'dependents') {
      const dependents = JSON.parse(value) as string[];
      throw new ConflictError(
        `"${name}" is an input of the registered merge${dependents.length > 1 ? 's' : ''} ${dependents.join(', ')}: remove ${dependents.length > 1 ? 'them' : 'it'} first, or force the removal`,
        { dependents },
      );
    }
    if (orphan) await this.deleteIfUnreferenced(orphan);
    this.log.info({ name }, 'adapter removed');
    return JSON.parse(value) as AdapterRecord;
  }

  /** Which registered adapters can be merged with `name`: same base model and the same shape for shared modules. */
  async compatible(name: string): Promise<Compatibility[]> {
    const self = await this.get(name);
    const others = (await this.list()).filter((r) => r.name !== name);
    const shapes = others.length > 0 ? await this.redis.hmget(this.k.shapes, ...others.map((r) => r.sha256)) : [];
    return others.map((other, i) => {
      const theirs = shapes[i] ? (JSON.parse(shapes[i]!) as ModuleShapes) : {};
      const reasons: string[] = [];
      let compatible = true;
      if (self.baseModel && other.baseModel && !sameBaseModel(self.baseModel, other.baseModel)) {
        compatible = false;
        reasons.push(`base model ${other.baseModel} differs from ${self.baseModel}`);
      } else if (!self.baseModel || !other.baseModel) {
        reasons.push('base model not recorded in adapter_config.json: judged by shapes only');
      }
      let shared = 0;
      for (const [module, mine] of Object.entries(self.moduleShapes)) {
        const their = theirs[module];
        if (!their) continue;
        shared++;
        if (their.inFeatures !== mine.inFeatures || their.outFeatures !== mine.outFeatures || their.kind !== mine.kind) {
          compatible = false;
          reasons.push(`${module}: ${their.kind} ${their.inFeatures}→${their.outFeatures} vs ${mine.kind} ${mine.inFeatures}→${mine.outFeatures}`);
        }
      }
      if (shared === 0) {
        compatible = false;
        reasons.push('no adapted module in common');
      }
      return { name: other.name, compatible, reasons: reasons.slice(0, 10), sharedModules: shared };
    });
  }

  /**
   * Calls `onEvent` for every registration and removal from now on (a Redis stream read on a connection of its
   * own, so events are not lost across a short disconnect). Returns a function that stops reading.
   */
  subscribe(onEvent: (event: RegistryEvent) => void): () => Promise<void> {
    const reader = this.redis.duplicate();
    reader.on('error', () => undefined); // reconnects by itself; reads resume from the last id seen
    let stopped = false;
    let lastId = '$';
    const loop = (async () => {
      while (!stopped) {
        try {
          const reply = (await reader.xread('BLOCK', 1_000, 'STREAMS', this.k.events, lastId)) as
            | Array<[string, Array<[string, string[]]>]>
            | null;
          for (const [, entries] of reply ?? []) {
            for (const [id, fields] of entries) {
              lastId = id;
              const f: Record<string, string> = {};
              for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
              onEvent({ type: f.type as RegistryEvent['type'], name: f.name!, sha256: f.sha256! });
            }
          }
        } catch (err) {
          if (stopped) break;
          this.log.debug({ err: (err as Error).message }, 'registry event stream read failed; retrying');
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    })();
    return async () => {
      stopped = true;
      reader.disconnect();
      await loop;
    };
  }

  /**
   * Deletes leftovers: store dirs no name refers to (an interrupted registration), temp dirs older than `graceMs`
   * and upload staging untouched for a minute (AdapterStore.sweepLeftovers). Safe to run while others register:
   * each content address is checked under its lock.
   */
  async sweep(graceMs = 6 * 3600_000): Promise<string[]> {
    const removed = await this.store.sweepLeftovers(graceMs);
    for (const sha256 of await this.store.list()) {
      if (await this.deleteIfUnreferenced(sha256)) removed.push(this.store.pathOf(sha256));
    }
    if (removed.length > 0) this.log.info({ removed }, 'registry sweep removed leftovers');
    return removed;
  }

  private async deleteIfUnreferenced(sha256: string, lockHeld = false): Promise<boolean> {
    const check = async () => {
      if (await this.redis.hexists(this.k.refs, sha256)) return false;
      await this.store.delete(sha256);
      return true;
    };
    return lockHeld ? check() : withLock(this.redis, `${this.k.lock}:${sha256}`, check);
  }
}

function validName(name: string): string {
  const parsed = AdapterNameSchema.safeParse(name);
  if (parsed.success) return parsed.data;
  const suggestion = slugify(name);
  throw new InvalidInputError(
    `adapter name "${name}" is not a slug (lowercase letters, digits and single hyphens)${suggestion ? `: try "${suggestion}"` : ''}`,
  );
}

function conflict(existing: AdapterRecord): ConflictError {
  return new ConflictError(
    `the name "${existing.name}" is taken by other content (sha256 ${existing.sha256.slice(0, 12)}…, registered ${existing.createdAt}): choose another name, or ask to replace it`,
    { existing: { name: existing.name, sha256: existing.sha256 } },
  );
}
