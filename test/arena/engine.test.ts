// Battles answered by the real inference engine (worker thread, ONNX Runtime) serving the demo model and its four
// adapters: both answers come from one compare() batch with the battle's settings and seed.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineAnswers, openArena, type Runtime } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { UnavailableError } from '../../src/errors.js';
import { buildModel } from '../../src/inference/builder/index.js';
import { DEMO_MODEL_NAME, DEMO_SKILLS, makeDemoModel } from '../../src/inference/demo.js';
import type { InferenceEngine } from '../../src/inference/engine/index.js';
import { Lifecycle } from '../../src/util/lifecycle.js';
import { silentLogger } from '../../src/util/log.js';
import { deletePrefix, testPrefix, testRedis } from '../helpers/redis.js';
import { startTestEngine } from '../helpers/engine.js';

const adapters = { list: async () => DEMO_SKILLS.map((name) => ({ name, baseModel: DEMO_MODEL_NAME, registeredBy: null })) };

describe('arena with the real engine', () => {
  const redis = testRedis();
  const prefix = testPrefix('arena-engine');
  let root: string;
  let engine: InferenceEngine;
  let rt: Runtime;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'lf-arena-engine-'));
    const demo = await makeDemoModel(path.join(root, 'demo'), { seed: 3 });
    const built = await buildModel(demo.checkpointDir, { dataDir: path.join(root, 'data'), dtype: 'fp32', maxRank: 16, slots: 5 });
    engine = await startTestEngine(built.dir, DEMO_SKILLS.map((name) => ({ dir: demo.adapterDirs[name], name })));
    const config = loadConfig({
      env: {},
      configDir: root,
      overrides: { redis: { prefix }, arena: { minVotes: 1, bootstrapRounds: 20, sampling: { maxTokens: 12, temperature: 0.8 } } },
    });
    rt = { config, log: silentLogger(), redis, lifecycle: new Lifecycle() };
  });
  afterAll(async () => {
    await engine?.close();
    await deletePrefix(redis, prefix);
    await redis.quit();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('generates both answers in one batch with the battle\'s settings and seed, each as that adapter alone would', async () => {
    const arena = openArena(rt, { adapters, engine });
    const battle = await arena.createBattle({ prompt: 'How do I list hidden files?', a: 'code', b: 'linux-commands', category: 'linux' });
    expect(battle.sampling).toMatchObject({ maxTokens: 12, temperature: 0.8, topP: 0.95 });
    const vote = await arena.vote(battle.id, 'dave', 'B');
    const models = vote.battle.models!;
    for (const side of ['A', 'B'] as const) {
      const alone = await engine.generate({
        model: models[side],
        input: { kind: 'chat', messages: [{ role: 'user', content: battle.prompt }] },
        temperature: battle.sampling.temperature,
        topP: battle.sampling.topP,
        maxTokens: battle.sampling.maxTokens,
        seed: battle.sampling.seed,
      });
      expect(battle.answers[side].text).toBe(alone.choices[0]!.text);
      expect(battle.answers[side].text.length).toBeGreaterThan(0);
    }
    // two different adapters answer differently
    expect(battle.answers.A.text).not.toBe(battle.answers.B.text);
    const board = await arena.leaderboard({ category: 'linux' });
    expect(battle.counted).toBe(true);
    expect(board.votes).toBe(1);
  });

  it('passes cancellation through to the engine', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      engineAnswers(engine).compare('hello', ['code', 'troubleshooting'], { temperature: 0, topP: 1, maxTokens: 4, seed: 1 }, { signal: controller.signal }),
    ).rejects.toThrow(/cancelled/);
  });

  it('answers 503 for battles in a process without a model, and still takes votes', async () => {
    const served = openArena(rt, { adapters, engine });
    const battle = await served.createBattle({ prompt: 'Hello!' });
    const modelless = openArena(rt, { adapters });
    await expect(modelless.createBattle({ prompt: 'Hello!' })).rejects.toThrow(UnavailableError);
    await expect(modelless.vote(battle.id, 'erin', 'tie')).resolves.toMatchObject({ choice: 'tie' });
  });
});
