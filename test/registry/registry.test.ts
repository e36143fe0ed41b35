import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, InvalidFileError, InvalidInputError, NotFoundError } from '../../src/errors.js';
import { stageFromPath } from '../../src/registry/ingest.js';
import { Registry } from '../../src/registry/registry.js';
import { AdapterStore } from '../../src/registry/store.js';
import type { RegistryEvent } from '../../src/registry/types.js';
import { silentLogger } from '../../src/util/log.js';
import { writeTestAdapter } from '../helpers/adapters.js';
import { fixture, fixturesSkipReason, haveFixtures } from '../helpers/fixtures.js';
import { deletePrefix, testPrefix, testRedis } from '../helpers/redis.js';

const redis = testRedis();
let prefix: string;
let root: string;
let importDir: string;
let registry: Registry;

beforeEach(async () => {
  prefix = testPrefix('registry');
  root = await mkdtemp(path.join(os.tmpdir(), 'lf-registry-'));
  importDir = path.join(root, 'import');
  registry = new Registry({ redis, prefix, store: new AdapterStore(path.join(root, 'data')), log: silentLogger() });
  await writeTestAdapter(path.join(importDir, 'a'), { hidden: 32, kv: 16, layers: 2, rank: 4 }, 1);
  await writeTestAdapter(path.join(importDir, 'b'), { hidden: 32, kv: 16, layers: 2, rank: 4 }, 2);
  await writeTestAdapter(path.join(importDir, 'wide'), { hidden: 48, kv: 16, layers: 2, rank: 4 }, 3);
});

afterEach(async () => {
  await deletePrefix(redis, prefix);
  await rm(root, { recursive: true, force: true });
});

afterAll(async () => {
  await redis.quit();
});

const stage = (rel: string) => stageFromPath(registry.store, importDir, rel);
const register = async (rel: string, name: string, extra: Partial<Parameters<Registry['registerStaged']>[1]> = {}) =>
  registry.registerStaged(await stage(rel), { name, registeredBy: 'test', ...extra });
const redisKeys = async () => (await redis.keys(`${prefix}*`)).sort();
const tmpLeft = async () => readdir(registry.store.tmpRoot).catch(() => []);

describe('Registry', () => {
  it.skipIf(!haveFixtures)('registers the SmolLM fixtures with their facts', async () => {
    void fixturesSkipReason;
    importDir = fixture('peft/SmolLM-135M-Instruct');
    const { status, adapter } = await register('tfm-hitesh-medai-5epochs', 'medai-5');
    expect(status).toBe('created');
    expect(adapter.baseModel).toMatch(/SmolLM/);
    expect(adapter.rank).toBeGreaterThan(0);
    expect(adapter.parameters).toBeGreaterThan(0);
    expect(adapter.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect((await readdir(registry.store.pathOf(adapter.sha256))).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const detail = await registry.get('medai-5');
    expect(Object.keys(detail.moduleShapes).length).toBe(adapter.modules);
    const other = await register('tfm-hitesh-medai-100epochs', 'medai-100');
    const compat = await registry.compatible('medai-5');
    expect(compat).toEqual([expect.objectContaining({ name: other.adapter.name, compatible: true })]);
  });

  it('treats the same content under the same name as a no-op and other content as a conflict', async () => {
    const first = await register('a', 'alpha');
    expect(first.status).toBe('created');
    expect((await register('a', 'alpha')).status).toBe('unchanged');
    // the record outlived its files (data dir wiped under the same Redis): the same registration brings them back
    await rm(registry.store.pathOf(first.adapter.sha256), { recursive: true });
    expect((await register('a', 'alpha')).status).toBe('unchanged');
    expect((await readdir(registry.store.pathOf(first.adapter.sha256))).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const keysBefore = await redisKeys();
    await expect(register('b', 'alpha')).rejects.toThrow(ConflictError);
    expect(await registry.store.list()).toEqual([first.adapter.sha256]);
    expect(await redisKeys()).toEqual(keysBefore);
    expect(await tmpLeft()).toEqual([]);

    const replaced = await register('b', 'alpha', { replace: true });
    expect(replaced.status).toBe('replaced');
    // the old content lost its last name: its files are gone
    expect(await registry.store.list()).toEqual([replaced.adapter.sha256]);
  });

  it('keeps files while any name refers to them, and deletes them with the last', async () => {
    const x = await register('a', 'x');
    await register('a', 'y');
    expect(await registry.store.list()).toHaveLength(1);
    await registry.remove('x');
    expect(await registry.store.list()).toEqual([x.adapter.sha256]);
    await registry.remove('y');
    expect(await registry.store.list()).toEqual([]);
    await expect(registry.remove('y')).rejects.toThrow(NotFoundError);
  });

  it('refuses to remove an input of a registered merge unless forced', async () => {
    const a = await register('a', 'base-a');
    await register('b', 'merged', { inputs: [{ name: 'base-a', sha256: a.adapter.sha256, weight: 1 }], recipeHash: 'f'.repeat(64) });
    const err = await registry.remove('base-a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toMatch(/input of the registered merge merged/);
    expect((await registry.byRecipe('f'.repeat(64)))?.name).toBe('merged');
    await registry.remove('base-a', { force: true });
    expect(await registry.find('base-a')).toBeUndefined();
  });

  it('refuses bad names and corrupt adapters, leaving nothing behind', async () => {
    await expect(register('a', 'Linux_Commands')).rejects.toThrow(/try "linux-commands"/);
    await expect(register('a', 'Linux_Commands')).rejects.toBeInstanceOf(InvalidInputError);
    await cp(path.join(importDir, 'a'), path.join(importDir, 'corrupt'), { recursive: true });
    await writeFile(path.join(importDir, 'corrupt', 'adapter_model.safetensors'), Buffer.from('\x10\x00\x00\x00\x00\x00\x00\x00{"a": broken'));
    await expect(register('corrupt', 'corrupt')).rejects.toBeInstanceOf(InvalidFileError);
    await writeFile(path.join(importDir, 'corrupt', 'adapter_config.json'), '{"peft_type": "LORA", "r": ');
    await expect(register('corrupt', 'corrupt')).rejects.toBeInstanceOf(InvalidFileError);
    expect(await registry.store.list()).toEqual([]);
    expect(await redisKeys()).toEqual([]);
    expect(await tmpLeft()).toEqual([]);
  });

  it('says which adapters can be merged together', async () => {
    await register('a', 'a');
    await register('b', 'b');
    await register('wide', 'wide');
    const verdicts = Object.fromEntries((await registry.compatible('a')).map((c) => [c.name, c]));
    expect(verdicts.b!.compatible).toBe(true);
    expect(verdicts.wide!.compatible).toBe(false);
    expect(verdicts.wide!.reasons.join(' ')).toMatch(/q_proj/);
  });

  it('sweeps store dirs no name refers to (a crash between storing and recording)', async () => {
    const kept = await register('a', 'kept');
    const staged = await stage('b');
    await registry.store.put('e'.repeat(64), staged);
    await rm(staged, { recursive: true, force: true });
    expect(await registry.store.list()).toHaveLength(2);
    await registry.sweep(0);
    expect(await registry.store.list()).toEqual([kept.adapter.sha256]);
  });

  it('announces registrations and removals', async () => {
    const events: RegistryEvent[] = [];
    const stop = registry.subscribe((e) => events.push(e));
    await new Promise((r) => setTimeout(r, 200));
    await register('a', 'a');
    await registry.remove('a');
    for (let i = 0; i < 50 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    await stop();
    expect(events.map((e) => `${e.type}:${e.name}`)).toEqual(['created:a', 'removed:a']);
  });
});
