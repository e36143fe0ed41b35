// End to end over HTTP, through the real composition root: register (by path, by multipart, by archive), merge
// on the queue with a worker thread, follow the SSE progress, download, and compare with the engine run directly.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { create as createTar, extract as extractTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MergeStreamEvent } from '../../src/client/index.js';
import { ConflictError, InvalidFileError, InvalidInputError, NotFoundError, TooLargeError } from '../../src/errors.js';
import { mergeToDirectory } from '../../src/merge/index.js';
import { contentHash } from '../../src/registry/store.js';
import { writeTestAdapter } from '../helpers/adapters.js';
import { fixture, haveFixtures } from '../helpers/fixtures.js';
import { startTestService, type TestService } from '../helpers/service.js';

const SMOL = fixture('peft/SmolLM-135M-Instruct');
let svc: TestService;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-api-'));
  await writeTestAdapter(path.join(work, 'gen-a'), { hidden: 64, kv: 32, layers: 3, rank: 4 }, 11);
  await writeTestAdapter(path.join(work, 'gen-b'), { hidden: 64, kv: 32, layers: 3, rank: 8 }, 12);
  svc = await startTestService({ name: 'api', server: { importDir: haveFixtures ? SMOL : work, uploadLimitBytes: 1024 * 1024 } });
});

afterAll(async () => {
  await svc?.close();
  await rm(work, { recursive: true, force: true });
});

async function untar(stream: ReadableStream<Uint8Array>, into: string): Promise<void> {
  await pipeline(Readable.fromWeb(stream as never), extractTar({ cwd: into }));
}

describe.skipIf(!haveFixtures)('merging the SmolLM fixtures over HTTP', () => {
  it('registers, merges with TIES, streams progress, and serves the same bytes as the engine run directly', async () => {
    const { client } = svc;
    const a = await client.adapters.registerPath('tfm-hitesh-medai-5epochs', { name: 'medai-5', category: 'medical' });
    const b = await client.adapters.registerPath('tfm-hitesh-medai-100epochs', { name: 'medai-100' });
    expect([a.status, b.status]).toEqual(['created', 'created']);
    expect((await client.adapters.list()).map((r) => r.name)).toEqual(['medai-100', 'medai-5']);
    expect((await client.adapters.compatible('medai-5'))[0]).toMatchObject({ name: 'medai-100', compatible: true });

    const request = { adapters: ['medai-5', 'medai-100'], weights: [0.7, 0.3], method: 'ties' as const, density: 0.5, name: 'medai-ties' };
    const queued = await client.merges.create(request);
    expect(queued.deduplicated).toBe(false);
    expect(queued.id).toMatch(/^merge-[0-9a-f]{24}$/);
    const events: MergeStreamEvent[] = [];
    const final = await client.merges.wait(queued.id, (e) => events.push(e));
    expect(final.state).toBe('completed');
    expect(final.result).toMatchObject({ name: 'medai-ties', status: 'created' });
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data as { phase: string; done: number; total: number });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((p) => p.done <= p.total)).toBe(true);

    // the same recipe again: the same job, nothing merged twice
    const again = await client.merges.create(request);
    expect(again).toMatchObject({ id: queued.id, deduplicated: true, state: 'completed' });
    // ... and under another name: the same result registered under that name too, still not merged again
    const renamed = await client.merges.create({ ...request, name: 'medai-best' });
    expect(renamed).toMatchObject({ id: queued.id, deduplicated: true, state: 'completed', name: 'medai-best' });
    const copy = await client.adapters.get('medai-best');
    expect(copy.sha256).toBe(final.result!.sha256);
    expect(copy.recipe).toMatchObject({ method: 'ties', density: 0.5 });
    await expect(client.merges.create({ ...request, name: 'medai-5' })).rejects.toThrow(/taken/);
    await client.adapters.remove('medai-best');
    expect(await client.merges.create(request)).toMatchObject({ id: queued.id, deduplicated: true, name: 'medai-ties' });

    const merged = await client.adapters.get('medai-ties');
    expect(merged.inputs?.map((i) => i.name)).toEqual(['medai-5', 'medai-100']);
    expect(merged.recipe).toMatchObject({ method: 'ties', density: 0.5, weights: [0.7, 0.3] });
    expect(merged.diagnostics).toBeTruthy();

    const downloaded = path.join(work, 'downloaded');
    await rm(downloaded, { recursive: true, force: true });
    await (await import('node:fs/promises')).mkdir(downloaded);
    await untar(await client.adapters.download('medai-ties'), downloaded);
    const direct = path.join(work, 'direct');
    await mergeToDirectory([path.join(SMOL, 'tfm-hitesh-medai-5epochs'), path.join(SMOL, 'tfm-hitesh-medai-100epochs')], direct, {
      method: 'ties',
      weights: [0.7, 0.3],
      density: 0.5,
    });
    const served = await readFile(path.join(downloaded, 'medai-ties', 'adapter_model.safetensors'));
    expect(served.equals(await readFile(path.join(direct, 'adapter_model.safetensors')))).toBe(true);
    expect(JSON.parse(await readFile(path.join(downloaded, 'medai-ties', 'adapter_config.json'), 'utf8'))).toEqual(
      JSON.parse(await readFile(path.join(direct, 'adapter_config.json'), 'utf8')),
    );

    // an input of a registered merge cannot be removed by accident
    await expect(client.adapters.remove('medai-5')).rejects.toThrow(ConflictError);
  }, 300_000); // TIES on the real fixtures takes ~25 s per run on a busy 2-core machine, and it runs twice
});

describe('uploads, errors and cancel over HTTP', () => {
  it('registers by multipart and by tar.gz, and answers bad requests with 4xx and nothing half-written', async () => {
    const { client } = svc;
    const storeBefore = await svc.registry.store.list();
    const created = await client.adapters.upload(path.join(work, 'gen-a'), { name: 'gen-a' });
    expect(created.status).toBe('created');
    // the weights were hashed on the way in: the address is the one a full read of the files gives
    expect(created.adapter.sha256).toBe(await contentHash(path.join(work, 'gen-a')));
    expect((await client.adapters.upload(path.join(work, 'gen-a'), { name: 'gen-a' })).status).toBe('unchanged');
    const tgz = path.join(work, 'gen-b.tar.gz');
    await createTar({ gzip: true, file: tgz, cwd: work }, ['gen-b']);
    const fromArchive = await client.adapters.upload(tgz, { name: 'gen-b', description: 'rank 8' });
    expect(fromArchive.adapter).toMatchObject({ rank: 8, description: 'rank 8', sha256: await contentHash(path.join(work, 'gen-b')) });

    // duplicate name with other content
    await expect(client.adapters.upload(path.join(work, 'gen-b'), { name: 'gen-a' })).rejects.toThrow(ConflictError);
    // traversal through the import dir
    await expect(client.adapters.registerPath('../../etc', { name: 'evil' })).rejects.toThrow(InvalidInputError);
    await expect(client.adapters.registerPath('/etc', { name: 'evil' })).rejects.toThrow(/outside the import dir/);
    // oversized upload (limit 1 MiB here)
    const big = path.join(work, 'big');
    await writeTestAdapter(big, { hidden: 512, kv: 512, layers: 8, rank: 16 }, 5);
    await expect(client.adapters.upload(big, { name: 'big' })).rejects.toThrow(TooLargeError);
    // a corrupt weights file
    const corrupt = path.join(work, 'corrupt');
    await writeTestAdapter(corrupt, { hidden: 16, kv: 16, layers: 1, rank: 2 }, 6);
    const bytes = await readFile(path.join(corrupt, 'adapter_model.safetensors'));
    await writeFile(path.join(corrupt, 'adapter_model.safetensors'), bytes.subarray(0, bytes.length - 100));
    const err = await client.adapters.upload(corrupt, { name: 'corrupt' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidFileError);
    expect((err as Error).message).not.toContain(svc.dataDir);
    // a name that is not a slug
    await expect(client.adapters.upload(path.join(work, 'gen-a'), { name: 'Not A Slug' })).rejects.toThrow(/name/);

    // merges: unknown adapters, weight count, density out of range
    await expect(client.merges.create({ adapters: ['gen-a', 'nope'], weights: [1, 1], method: 'linear' })).rejects.toThrow(NotFoundError);
    await expect(client.merges.create({ adapters: ['gen-a', 'gen-b'], weights: [1], method: 'linear' })).rejects.toThrow(/1 given for 2 adapters/);
    await expect(client.merges.create({ adapters: ['gen-a', 'gen-b'], weights: [1, 1], method: 'ties', density: -0.5 })).rejects.toThrow(/density/);
    await expect(client.merges.create({ adapters: ['gen-a', 'gen-b'], weights: [1, 1], method: 'linear', density: 0.5 })).rejects.toThrow(/takes no density/);
    await expect(client.merges.create({ adapters: ['gen-a', 'gen-b'], weights: [1, 1], method: 'ties', desnity: 0.5 } as never)).rejects.toThrow(
      /unknown field "desnity"/,
    );
    await expect(client.merges.get('merge-000000000000000000000000')).rejects.toThrow(NotFoundError);

    // nothing half-written: exactly the two new adapters' files, no staging leftovers, two new names
    const stored = (await svc.registry.store.list()).filter((s) => !storeBefore.includes(s));
    expect(stored).toHaveLength(2);
    expect(await readdir(svc.registry.store.tmpRoot).catch(() => [])).toEqual([]);
    const names = (await client.adapters.list()).map((r) => r.name);
    expect(names).toContain('gen-a');
    expect(names).not.toContain('big');
    expect(names).not.toContain('corrupt');
  });

  it('merges generated adapters and refuses what the engine refuses, without retrying bad input', async () => {
    const { client } = svc;
    await client.adapters.upload(path.join(work, 'gen-a'), { name: 'gen-a' });
    await client.adapters.upload(path.join(work, 'gen-b'), { name: 'gen-b' });
    const ok = await client.merges.create({ adapters: ['gen-a', 'gen-b'], weights: [0.5, 0.5], method: 'linear' });
    const done = await client.merges.wait(ok.id);
    expect(done.state).toBe('completed');
    expect(done.result?.name).toMatch(/^linear-[0-9a-f]{8}$/);
    // the worker's result was hashed while the engine wrote it: the address matches the stored files
    expect(done.result?.sha256).toBe(await contentHash(svc.registry.store.pathOf(done.result!.sha256)));
    // rank 8 > cat's forbidden explicit rank: refused by the engine's own schema at the API
    await expect(client.merges.create({ adapters: ['gen-a', 'gen-b'], weights: [1, 1], method: 'cat', rank: 4 })).rejects.toThrow(InvalidInputError);
    // per-layer weights where a weight is no scale of the update: refused, saying what to use
    await expect(
      client.merges.create({ adapters: ['gen-a', 'gen-b'], weights: [1, 1], method: 'linear', space: 'factors', layerWeights: { weights: [[1, 0.5], [0.5, 1]] } }),
    ).rejects.toThrow(/layerWeights: in factors space linear .*use delta space/);
  });

  it('cancels a queued merge at once', async () => {
    // a service without a worker: the job stays queued
    const idle = await startTestService({ name: 'cancel', worker: false, prefix: svc.prefix, dataDir: svc.dataDir });
    try {
      const queued = await idle.client.merges.create({ adapters: ['gen-a', 'gen-b'], weights: [0.2, 0.8], method: 'linear', name: 'never-run' });
      expect(queued.state === 'queued' || queued.state === 'running').toBe(true);
      if (queued.state === 'queued') {
        const cancelled = await idle.client.merges.cancel(queued.id);
        expect(cancelled.state).toBe('cancelled');
        expect((await idle.client.merges.get(queued.id)).state).toBe('cancelled');
      }
    } finally {
      await idle.rt.lifecycle.close();
    }
  });
});

describe('the adapter list across API processes', () => {
  it('shows a registration or removal made through another process on the next request, and answers 304 while unchanged', async () => {
    // a second API process on the same Redis and store: its cached list must not hide the first one's changes
    const other = await startTestService({ name: 'list', worker: false, prefix: svc.prefix, dataDir: svc.dataDir });
    try {
      const names = async () => (await other.client.adapters.list()).map((a) => a.name);
      await other.client.adapters.list(); // warm its cache
      await writeTestAdapter(path.join(work, 'gen-c'), { hidden: 64, kv: 32, layers: 2, rank: 2 }, 13);
      await svc.client.adapters.upload(path.join(work, 'gen-c'), { name: 'gen-c' });
      expect(await names()).toContain('gen-c');

      const first = await fetch(`${other.url}/v1/adapters`);
      const etag = first.headers.get('etag')!;
      expect(etag).toMatch(/^W\/"/);
      await first.arrayBuffer();
      const unchanged = await fetch(`${other.url}/v1/adapters`, { headers: { 'if-none-match': etag } });
      expect(unchanged.status).toBe(304);

      await svc.client.adapters.remove('gen-c');
      expect(await names()).not.toContain('gen-c');
      const changed = await fetch(`${other.url}/v1/adapters`, { headers: { 'if-none-match': etag } });
      expect(changed.status).toBe(200);
      expect(changed.headers.get('etag')).not.toBe(etag);
      expect(((await changed.json()) as { adapters: { name: string }[] }).adapters.map((a) => a.name)).not.toContain('gen-c');
    } finally {
      await other.rt.lifecycle.close();
    }
  });
});
