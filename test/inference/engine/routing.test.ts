// Routing: the features the engine core reads from a base prefill (against the float64 reference, batched and
// chunked), the nearest-centroid choice (against a plain Euclidean reference), and the engine serving a router:
// its choice is what the reference features say, and its greedy answer is the chosen adapter's, token for token.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceEngine} from '../../../src/inference/engine/index.js';
import type { RouterSpec } from '../../../src/inference/engine/index.js';
import { chooseMember, featureRequest, fitCentroids } from '../../../src/inference/engine/routing.js';
import { fitTextCentroids, projectText, textFeature, textSimilarity, type TextFeature } from '../../../src/inference/engine/text-features.js';
import { SeededRandom } from '../../../src/inference/rng.js';
import { readAdapter, writeAdapter } from '../../../src/formats/peft.js';
import { mergeAdapters } from '../../../src/merge/engine.js';
import { referenceLogits } from '../reference.js';
import { CoreHarness, makeTestModel, writePeftAdapter, type TestModel } from './model.js';
import { startTestEngine } from '../../helpers/engine.js';

let model: TestModel;
beforeAll(async () => {
  model = await makeTestModel({ score: true, maxRank: 16 }); // room for blends of two adapters (ranks 4 + 8)
});
afterAll(() => rmSync(model.root, { recursive: true, force: true }));

/** Reference features: mean value row per layer over the prompt, then the last position's log-softmax. */
function referenceFeatures(ids: number[], layers: number[], logprobs: boolean): number[] {
  const taps = { values: [] as Float64Array[][] };
  const logits = referenceLogits(model.cfg, (n) => model.tensors.get(n), ids, undefined, taps);
  const out: number[] = [];
  for (const l of layers) {
    const rows = taps.values[l]!;
    for (let k = 0; k < rows[0]!.length; k++) out.push(rows.reduce((s, r) => s + r[k]!, 0) / rows.length);
  }
  if (logprobs) {
    const last = logits[logits.length - 1]!;
    const max = Math.max(...last);
    const lse = max + Math.log(last.reduce((z, v) => z + Math.exp(v - max), 0));
    for (const v of last) out.push(v - lse);
  }
  return out;
}

function maxRelError(actual: ArrayLike<number>, expected: number[]): number {
  const scale = Math.max(...expected.map(Math.abs));
  let err = 0;
  for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(actual[i]! - expected[i]!));
  return err / scale;
}

/** Prompts of three "topics": token ids drawn from three disjoint sets of 8 tokens (as skills have their own words). */
function topicPrompt(topic: number, seed: number, length = 16): number[] {
  const rng = new SeededRandom(1000 * topic + seed);
  return Array.from({ length }, () => 3 + topic * 80 + 7 * rng.int(8));
}

describe('routing features from the base prefill', () => {
  for (const chunk of [512, 5]) {
    it(`are the reference's mean value rows and log-probs (prefill chunk ${chunk})`, async () => {
      const harness = await CoreHarness.open(model, { prefillChunk: chunk });
      try {
        const prompts = [topicPrompt(0, 1, 11), topicPrompt(1, 2, 7)];
        const { result } = harness.submit(
          prompts.map((prompt) => ({ prompt })),
          { maxTokens: 1, features: { layers: [0, 1], logprobs: true } },
        );
        await result.done;
        expect(result.error).toBeNull();
        prompts.forEach((prompt, i) => {
          const expected = referenceFeatures(prompt, [0, 1], true);
          const got = result.finish[i]!.features!;
          expect(got.length).toBe(expected.length);
          expect(maxRelError(got, expected), `row ${i}`).toBeLessThan(1e-4);
        });
      } finally {
        await harness.close();
      }
    });
  }

  it('refuses a layer the model does not have', async () => {
    const harness = await CoreHarness.open(model);
    try {
      const { result } = harness.submit([{ prompt: [5, 6, 7] }], { maxTokens: 1, features: { layers: [2], logprobs: false } });
      await result.done;
      expect(String(result.error)).toMatch(/layer 2 does not exist: the model has layers 0\.\.1/);
    } finally {
      await harness.close();
    }
  });
});

/** The plain reference: centre on the mean of member means, scale to unit length, nearest centroid in Euclidean distance. */
function referenceChoice(perMember: number[][][], x: number[], margin: number): number | null {
  const dim = x.length;
  const mean = (vs: number[][]) => Array.from({ length: dim }, (_, i) => vs.reduce((s, v) => s + v[i]!, 0) / vs.length);
  const center = mean(perMember.map(mean));
  const unit = (v: number[]) => {
    const c = v.map((e, i) => e - center[i]!);
    const n = Math.hypot(...c);
    return c.map((e) => e / n);
  };
  const centroids = perMember.map((vs) => {
    const m = mean(vs.map(unit)).map((e, i) => e + center[i]!); // unit() centres again
    return unit(m);
  });
  const u = unit(x);
  // for unit vectors, ‖u − c‖² = 2 − 2·cos: nearest in distance is most similar in cosine
  const d = centroids.map((c) => c.reduce((s, e, i) => s + (e - u[i]!) ** 2, 0));
  const order = d.map((_, i) => i).sort((a, b) => d[a]! - d[b]!);
  const lead = (d[order[1]!]! - d[order[0]!]!) / 2;
  return lead >= margin ? order[0]! : null;
}

describe('nearest-centroid choice', () => {
  it('agrees with the plain reference, margin included', () => {
    const rng = new SeededRandom(7);
    const dim = 16;
    const offsets = [0, 1, 2].map(() => Array.from({ length: dim }, () => rng.normal()));
    const sample = (m: number) => offsets[m]!.map((o) => 5 + o + 0.8 * rng.normal());
    const perMember = [0, 1, 2].map((m) => Array.from({ length: 5 }, () => sample(m)));
    const fitted = fitCentroids(perMember);
    let fallbacks = 0;
    for (let t = 0; t < 200; t++) {
      const x = sample(t % 3);
      for (const margin of [0, 0.05, 0.3]) {
        const got = chooseMember(fitted, x, margin);
        const want = referenceChoice(perMember, x, margin);
        expect(got.member, `test ${t}, margin ${margin}`).toBe(want);
        if (got.member === null) fallbacks++;
      }
    }
    expect(fallbacks).toBeGreaterThan(0); // the margin did send some to the fallback
  });

  it('refuses features of another size', () => {
    const fitted = fitCentroids([[[1, 2]], [[2, 1]]]);
    expect(() => chooseMember(fitted, [1, 2, 3], 0)).toThrow(/recreate the router/);
  });
});

/** Three topics in words, as skills have their own words. */
const TOPIC_WORDS = [
  ['list the files', 'show disk usage', 'kill the process', 'change the owner', 'count the lines'],
  ['write a function', 'sort the array', 'parse the json', 'return a promise', 'declare a class'],
  ['the server is down', 'the disk is full', 'the push is rejected', 'the build fails', 'the port is taken'],
];
const OBJECTS = ['in logs', 'for alice', 'of report.txt', 'on web1', 'with care', 'from the queue', 'at noon'];
const topicText = (topic: number, seed: number) => {
  const rng = new SeededRandom(77 * topic + seed);
  const words = TOPIC_WORDS[topic]!;
  return `${words[rng.int(words.length)]} ${OBJECTS[rng.int(OBJECTS.length)]}, then ${words[rng.int(words.length)]}`;
};

/** A text feature as bucket → weight. */
const asMap = (f: TextFeature) => new Map([...f.buckets].map((b, i) => [b, f.weights[i]!]));

describe('the text rule', () => {
  it('weighs character 3- to 5-grams, log(1 + count), at unit length, buckets ascending', () => {
    // " ab " has the 3-grams " ab" and "ab ", and the 4-gram " ab ", each once
    const f = textFeature('  AB\n');
    expect(f.buckets.length).toBe(3);
    for (const w of f.weights) expect(w).toBeCloseTo(1 / Math.sqrt(3), 12);
    expect(textFeature('Ab')).toEqual(f);
    const twice = textFeature('abab abab');
    expect(twice.weights.reduce((s, w) => s + w * w, 0)).toBeCloseTo(1, 12);
    const long = textFeature(topicText(2, 9));
    expect([...long.buckets]).toEqual([...long.buckets].sort((a, b) => a - b));
  });

  it('hashes each gram as FNV-1a of `${n}${gram}` into 2^20 buckets, the buckets stored routers were fitted on', () => {
    const reference = (text: string) => {
      const fnv = (g: string) => {
        let h = 0x811c9dc5;
        for (let i = 0; i < g.length; i++) h = Math.imul(h ^ g.charCodeAt(i), 0x01000193);
        return (h >>> 0) % (1 << 20);
      };
      const t = ` ${text.toLowerCase().replace(/\s+/g, ' ').trim()} `;
      const counts = new Map<number, number>();
      for (const n of [3, 4, 5]) for (let i = 0; i + n <= t.length; i++) counts.set(fnv(`${n}${t.slice(i, i + n)}`), (counts.get(fnv(`${n}${t.slice(i, i + n)}`)) ?? 0) + 1);
      return counts;
    };
    for (const text of ['Kill the process with PID 4321', 'Ünïcödé ✓ 🤖 日本語\n\tand tabs', topicText(1, 7), 'ab']) {
      const f = asMap(textFeature(text));
      const counts = reference(text);
      expect([...f.keys()].sort()).toEqual([...counts.keys()].sort());
      const norm = Math.sqrt([...counts.values()].reduce((s, c) => s + Math.log1p(c) ** 2, 0));
      for (const [bucket, c] of counts) expect(f.get(bucket)).toBeCloseTo(Math.log1p(c) / norm, 12);
    }
  });

  it('chooses what the plain reference chooses on the full vectors, margin included', () => {
    const perMember = [0, 1, 2].map((t) => [1, 2, 3, 4, 5].map((s) => textFeature(topicText(t, s))));
    const fitted = fitTextCentroids(perMember);
    let right = 0;
    for (let i = 0; i < 60; i++) {
      const query = textFeature(i % 7 === 0 ? 'an unrelated question about the weather' : topicText(i % 3, 100 + i));
      // the reference works on dense vectors over every bucket the calibration and the query use
      const buckets = [...new Set([...perMember.flat().flatMap((f) => [...f.buckets]), ...query.buckets])];
      const dense = (f: TextFeature) => buckets.map((b) => asMap(f).get(b) ?? 0);
      for (const margin of [0, 0.1]) {
        const got = chooseMember(fitted, projectText(query, fitted.dims), margin);
        expect(got.member, `query ${i}, margin ${margin}`).toBe(referenceChoice(perMember.map((fs) => fs.map(dense)), dense(query), margin));
      }
      if (i % 7 !== 0 && chooseMember(fitted, projectText(query, fitted.dims), 0).member === i % 3) right++;
    }
    expect(right).toBeGreaterThanOrEqual(45); // of 51 topic prompts: the words tell the topics apart
  });

  it('measures similarity as the dot product on shared buckets', () => {
    const texts = ['Kill the process with PID 4321', 'kill process 99', topicText(0, 3), topicText(1, 4), '', 'ab'];
    for (const a of texts) {
      for (const b of texts) {
        const [fa, fb] = [asMap(textFeature(a)), asMap(textFeature(b))];
        const plain = [...fa].reduce((s, [bucket, w]) => s + w * (fb.get(bucket) ?? 0), 0);
        expect(textSimilarity(textFeature(a), textFeature(b))).toBeCloseTo(plain, 12);
      }
    }
    expect(textSimilarity(textFeature('same words'), textFeature('Same  words'))).toBeCloseTo(1, 12);
  });

  it('refuses calibration with no text', () => {
    expect(() => fitTextCentroids([[textFeature('')], [textFeature(' ')]])).toThrow(/no text to route on/);
  });
});

describe('an engine serving a router', () => {
  const NAMES = ['alpha', 'beta', 'gamma'];
  const BLEND = 0.6;
  let engine: InferenceEngine;
  const routers = new Map<string, RouterSpec>();

  beforeAll(async () => {
    const adapters = await Promise.all(model.adapters.map((lora, i) => writePeftAdapter(path.join(model.root, 'adapters', NAMES[i]!), lora)));
    // the reference for blends: each pair merged by the merge engine (cat: the exact weighted sum), served as adapters
    const read = await Promise.all(adapters.map((dir) => readAdapter(dir)));
    const pairs: Array<{ dir: string; name: string }> = [];
    for (let a = 0; a < NAMES.length; a++) {
      for (let b = a + 1; b < NAMES.length; b++) {
        const merged = await mergeAdapters([read[a]!, read[b]!], { method: 'cat', weights: [BLEND, BLEND] });
        const dir = path.join(model.root, 'pairs', `${NAMES[a]}+${NAMES[b]}`);
        await writeAdapter(dir, merged.adapter);
        pairs.push({ dir, name: `${NAMES[a]}+${NAMES[b]}` });
      }
    }
    engine = await startTestEngine(model.modelDir, [...adapters.map((dir, i) => ({ dir, name: NAMES[i]! })), ...pairs], {
      routers: { resolve: async (name: string) => routers.get(name) ?? null, list: async () => [...routers.values()] },
      modelId: 'tiny-llama',
    });
    // calibration: 4 prompts per topic, topic m served by adapter m
    const perMember = await Promise.all(
      [0, 1, 2].map((m) => Promise.all([1, 2, 3, 4].map((s) => engine.routeFeatures({ kind: 'ids', ids: topicPrompt(m, s) }, 'value-mid')))),
    );
    const fitted = fitCentroids(perMember);
    const members = NAMES.map((model) => ({ model }));
    routers.set('topics', { name: 'topics', rule: 'value-mid', margin: 0, members, fallback: null, fitted });
    routers.set('unsure', { name: 'unsure', rule: 'value-mid', margin: 3, members, fallback: 'tiny-llama', fitted });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('routes as the reference features say, and answers exactly as the chosen adapter', async () => {
    const fitted = routers.get('topics')!.fitted;
    const layer = featureRequest('value-mid', 2).layers[0]!;
    let right = 0;
    for (let t = 0; t < 6; t++) {
      const topic = t % 3;
      const ids = topicPrompt(topic, 100 + t);
      const expected = chooseMember(fitted, referenceFeatures(ids, [layer], false), 0).member!;
      const routed = await engine.generate({ model: 'topics', input: { kind: 'ids', ids }, maxTokens: 6, temperature: 0, ignoreEos: true });
      expect(routed.routedTo!.model).toBe(NAMES[expected]);
      expect(routed.routedTo).toMatchObject({ router: 'topics', fallback: false });
      expect(routed.model).toBe('topics');
      if (expected === topic) right++;
      const direct = await engine.generate({ model: NAMES[expected]!, input: { kind: 'ids', ids }, maxTokens: 6, temperature: 0, ignoreEos: true });
      expect(routed.choices[0]!.tokenIds).toEqual(direct.choices[0]!.tokenIds);
    }
    expect(right).toBe(6); // random weights still separate prompts drawn from disjoint token sets
  });

  it('says whom it routed to before the first token, and falls back when no member is clearly nearest', async () => {
    const ids = topicPrompt(1, 200);
    let routedFirst = false;
    let tokens = 0;
    const result = await engine.generate(
      { model: 'unsure', input: { kind: 'ids', ids }, maxTokens: 4, temperature: 0, ignoreEos: true },
      {
        onRouted: (r) => {
          routedFirst = tokens === 0 && r.model === 'tiny-llama';
        },
        onDelta: () => void tokens++,
      },
    );
    expect(routedFirst).toBe(true);
    expect(result.routedTo).toMatchObject({ model: 'tiny-llama', nearest: 'beta', fallback: true });
    const base = await engine.generate({ model: 'tiny-llama', input: { kind: 'ids', ids }, maxTokens: 4, temperature: 0, ignoreEos: true });
    expect(result.choices[0]!.tokenIds).toEqual(base.choices[0]!.tokenIds);
  });

  it('without a fallback, blends the two nearest when none is clearly nearest: exactly the merge engine\'s weighted sum', async () => {
    const { fitted, members } = routers.get('topics')!;
    routers.set('blend', { name: 'blend', rule: 'value-mid', margin: 3, members, fallback: null, blend: BLEND, fitted });
    routers.set('clear', { name: 'clear', rule: 'value-mid', margin: 0, members, fallback: null, blend: BLEND, fitted });
    for (let t = 0; t < 3; t++) {
      const input = { kind: 'ids' as const, ids: topicPrompt(t, 500 + t) };
      const choice = chooseMember(fitted, await engine.routeFeatures(input, 'value-mid'), 3);
      const order = choice.similarities.map((s, i) => [s, i] as const).sort((x, y) => y[0] - x[0]);
      const expected = [NAMES[order[0]![1]]!, NAMES[order[1]![1]]!];
      const routed = await engine.generate({ model: 'blend', input, maxTokens: 6, temperature: 0, ignoreEos: true });
      expect(routed.routedTo).toMatchObject({ router: 'blend', nearest: expected[0], fallback: false, blend: { members: expected, weight: BLEND } });
      expect(routed.routedTo!.model).toBe(expected.join('+'));
      const pair = [...expected].sort().join('+');
      const direct = await engine.generate({ model: pair, input, maxTokens: 6, temperature: 0, ignoreEos: true });
      expect(routed.choices[0]!.tokenIds, `topic ${t}`).toEqual(direct.choices[0]!.tokenIds);
      const scored = await engine.score({ rows: [{ model: 'blend', input, continuation: 'abc' }] });
      expect(scored.rows[0]!.routedTo?.blend?.members).toEqual(expected);
      expect(scored.rows[0]!.logprobSum).toBeCloseTo((await engine.score({ rows: [{ model: pair, input, continuation: 'abc' }] })).rows[0]!.logprobSum, 4);
      // a clear lead: the nearest alone
      const clear = await engine.generate({ model: 'clear', input, maxTokens: 1, temperature: 0 });
      expect(clear.routedTo!.blend).toBeUndefined();
    }
  });

  it('routes on the prompt text without a model pass, and answers exactly as the chosen adapter', async () => {
    const perMember = [0, 1, 2].map((t) => [1, 2, 3, 4].map((s) => textFeature(engine.promptText({ kind: 'chat', messages: [{ role: 'user', content: topicText(t, s) }] }))));
    const fitted = fitTextCentroids(perMember);
    routers.set('words', { name: 'words', rule: 'text', margin: 0, members: NAMES.map((model) => ({ model })), fallback: null, fitted });
    for (let t = 0; t < 3; t++) {
      const input = { kind: 'chat' as const, messages: [{ role: 'user', content: topicText(t, 50 + t) }] };
      const before = await engine.stats();
      const routed = await engine.generate({ model: 'words', input, maxTokens: 5, temperature: 0, ignoreEos: true });
      const after = await engine.stats();
      expect(routed.routedTo!.model).toBe(NAMES[t]);
      expect(after.prefillTokens - before.prefillTokens).toBe(routed.promptIds.length); // the answer's prefill only
      const direct = await engine.generate({ model: NAMES[t]!, input, maxTokens: 5, temperature: 0, ignoreEos: true });
      expect(routed.choices[0]!.tokenIds).toEqual(direct.choices[0]!.tokenIds);
    }
    // a prompt longer than the main thread's share (its n-grams counted in the tokenizer thread): the same choice
    for (let t = 0; t < 3; t++) {
      const long = Array.from({ length: 120 }, (_, k) => topicText(t, 200 + k)).join('. ');
      expect(long.length).toBeGreaterThan(4096);
      const input = { kind: 'chat' as const, messages: [{ role: 'user', content: long }] };
      const expected = chooseMember(fitted, projectText(textFeature(engine.promptText(input)), fitted.dims!), 0);
      const routed = await engine.route(routers.get('words')!, input);
      expect(routed.model).toBe(NAMES[expected.nearest]);
      expect(routed.lead).toBeCloseTo(expected.lead, 12);
    }
    const { dims: _dims, ...noBuckets } = fitted;
    routers.set('old', { name: 'old', rule: 'text', margin: 0, members: NAMES.map((model) => ({ model })), fallback: null, fitted: noBuckets });
    await expect(engine.generate({ model: 'old', input: { kind: 'text', text: 'x' }, maxTokens: 1 })).rejects.toThrow(/recreate it/);
  });

  it('scores rows on a router as the member each context routes to, more contexts than the queue holds', async () => {
    // 24 distinct contexts: started all at once, their routing passes overflowed the engine's queue (4 + 8)
    const rows = Array.from({ length: 24 }, (_, t) => ({ model: 'topics', input: { kind: 'ids' as const, ids: topicPrompt(t % 3, 400 + t) }, continuation: 'ab' }));
    const scored = await engine.score({ rows });
    const spec = routers.get('topics')!;
    for (const [i, row] of rows.entries()) {
      const member = (await engine.route(spec, row.input)).model;
      expect(scored.rows[i]!.routedTo?.model, `row ${i}`).toBe(member);
      const direct = await engine.score({ rows: [{ ...row, model: member }] });
      expect(scored.rows[i]!.logprobSum).toBeCloseTo(direct.rows[0]!.logprobSum, 4);
    }
  });

  it('lists routers among the models and routes rows of a compare', async () => {
    const models = await engine.models();
    expect(models.find((m) => m.id === 'topics')).toMatchObject({ parent: 'tiny-llama', members: NAMES });
    const ids = topicPrompt(2, 300);
    const compared = await engine.compare({ models: ['topics', 'alpha'], input: { kind: 'ids', ids }, maxTokens: 4, temperature: 0 });
    expect(compared.answers[0]!.routedTo!.model).toBe('gamma');
    expect(compared.answers[1]!.routedTo).toBeUndefined();
  });
});
