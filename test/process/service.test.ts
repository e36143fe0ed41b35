// The service as `npm start` composes it (registry, merge queue and worker, engine, arena) with the demo model:
// built on first start, its four adapters registered (an older demo's replaced, a user's kept), a merge servable by
// name as soon as it is done.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryAdapters, startEngine } from '../../src/app.js';
import { DEMO_MODEL_NAME, DEMO_SKILLS } from '../../src/inference/demo.js';
import { DEMO_ASSETS_DIR } from '../../src/inference/demo-assets.js';
import { stageFromPath } from '../../src/registry/ingest.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let client: OpenAI;

beforeAll(async () => {
  svc = await startTestService({ name: 'serving', inference: { enabled: true, threads: 1 } });
  client = new OpenAI({ baseURL: `${svc.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}, 180_000);

afterAll(async () => {
  await svc?.close();
});

describe('npm start composition', () => {
  it('serves the demo model with its four adapters registered', async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    expect(models.map((m) => m.id).sort()).toEqual([DEMO_MODEL_NAME, ...DEMO_SKILLS].sort());
    expect((await svc.registry.get('code')).registeredBy).toBe('loraforge demo');
    const answers = new Set<string>();
    for (const model of [DEMO_MODEL_NAME, ...DEMO_SKILLS]) {
      const answer = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Show disk usage' }], max_tokens: 12, temperature: 0 });
      expect(answer.choices[0]!.message.content!.length).toBeGreaterThan(0);
      answers.add(answer.choices[0]!.message.content!);
    }
    expect(answers.size).toBeGreaterThan(1);
  });

  it('serves a merge by name on the next request after it finishes', async () => {
    const queued = await svc.client.merges.create({ adapters: ['code', 'linux-commands'], weights: [0.5, 0.5], method: 'linear', name: 'code-linux' });
    expect((await svc.client.merges.wait(queued.id)).state).toBe('completed');
    const answer = await client.completions.create({ model: 'code-linux', prompt: 'tar -czf', max_tokens: 6, temperature: 0 });
    expect(answer.model).toBe('code-linux');
    expect(answer.choices[0]!.finish_reason).toBe('length');
    const listed = (await svc.client.inference.models()).find((m) => m.id === 'code-linux');
    expect(listed?.parent).toBe(DEMO_MODEL_NAME);
  });

  it('answers battles through the arena with the engine', async () => {
    const response = await fetch(`${svc.url}/v1/battles`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Why does nginx return 502?', a: 'code', b: 'troubleshooting' }),
    });
    expect(response.status).toBeLessThan(300);
  });

  it('a second engine on the same data dir starts from the cached model and the registry, with the shipped demo adapters and their files', async () => {
    // `code` as an older demo left it: other weights, registered by the demo; a user's adapter under a skill stays
    const shipped = (await svc.registry.get('code')).sha256;
    const older = await stageFromPath(svc.registry.store, path.join(DEMO_ASSETS_DIR, 'adapters'), 'linux-commands');
    await svc.registry.registerStaged(older, { name: 'code', registeredBy: 'loraforge demo', category: 'code', replace: true });
    const users = await stageFromPath(svc.registry.store, path.join(DEMO_ASSETS_DIR, 'adapters'), 'code');
    await svc.registry.registerStaged(users, { name: 'troubleshooting', registeredBy: 'alice', category: 'troubleshooting', replace: true });
    expect((await svc.registry.get('code')).sha256).not.toBe(shipped);
    // `linux-commands` registered but its files gone (a data dir wiped under the same Redis)
    const linux = (await svc.registry.get('linux-commands')).sha256;
    await rm(svc.registry.store.pathOf(linux), { recursive: true });
    const engine = await startEngine(svc.rt, svc.registry);
    try {
      expect((await svc.registry.get('code')).sha256).toBe(shipped);
      expect(await svc.registry.store.has(linux)).toBe(true);
      expect((await svc.registry.get('troubleshooting')).registeredBy).toBe('alice');
      expect((await engine.models()).length).toBe(DEMO_SKILLS.length + 2);
    } finally {
      await engine.close();
    }
  });

  it('says what to do about an adapter whose files are gone, and takes them back from a new registration of it', async () => {
    const { sha256 } = await svc.registry.get('python-automation');
    await rm(svc.registry.store.pathOf(sha256), { recursive: true });
    const adapters = registryAdapters(svc.registry);
    await expect(adapters.resolve('python-automation')).rejects.toThrow(
      /adapter "python-automation" is registered but its files are gone from .*: register it again \(loraforge adapters register <dir> --name python-automation\) or remove it/,
    );
    const again = await stageFromPath(svc.registry.store, path.join(DEMO_ASSETS_DIR, 'adapters'), 'python-automation');
    expect((await svc.registry.registerStaged(again, { name: 'python-automation', registeredBy: 'loraforge demo', category: 'python-automation' })).status).toBe('unchanged');
    expect((await adapters.resolve('python-automation'))?.dir).toBe(svc.registry.store.pathOf(sha256));
  });
});
