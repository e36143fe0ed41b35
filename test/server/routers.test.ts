// Routers through the API: created from the suites' calibration part over the demo model's experts (one per built-in
// suite), listed, shown, removed; served like any model through the stock `openai` client, saying who answered in
// the `loraforge` field and the X-Loraforge-Routed-To header; bad requests answered with what to fix.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatEvalReport } from '../../src/cli/commands/eval.js';
import { LoraforgeError } from '../../src/errors.js';
import { splitSuite } from '../../src/eval/split.js';
import { loadSuites } from '../../src/eval/suite.js';
import { demoWithExperts, startEvalStack, type DemoWithExperts, type EvalStack } from '../eval/stack.js';
import { writeTestAdapter } from '../helpers/adapters.js';
import { seeded } from '../helpers/random.js';

let root: string;
let demo: DemoWithExperts;
let stack: EvalStack;
let openai: OpenAI;
const CATEGORIES = ['code', 'linux-commands', 'python-automation', 'troubleshooting'];
const MEMBERS = CATEGORIES.map((c) => `${c}-expert`);

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'lf-routers-api-'));
  demo = await demoWithExperts(root);
  stack = await startEvalStack(demo, { name: 'routers-api', mergeWorker: false });
  openai = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}, 240_000);

afterAll(async () => {
  await stack?.close();
  await rm(root, { recursive: true, force: true });
});

async function status(promise: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof LoraforgeError) return { status: err.status, message: err.message };
    throw err;
  }
  throw new Error('expected an error');
}

describe('routers through the API', () => {
  it('creates a router calibrated on at most 5 calibration items per category, and lists, shows and serves it', async () => {
    const { status: created, router } = await stack.client.routers.create({ name: 'skills', members: MEMBERS, fallback: null });
    expect(created).toBe('created');
    expect(router).toMatchObject({ blend: null, margin: 0.02 }); // unless asked to blend, the nearest always answers
    expect(router.members).toEqual(MEMBERS.map((model, i) => ({ model, category: CATEGORIES[i] })));
    expect(router.calibration.source).toBe('suites');
    for (const n of router.calibration.counts) {
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(5);
    }
    const parts = splitSuite(await loadSuites());
    for (const id of router.calibration.itemIds!) expect(parts.get(id)).toBe('calibration');

    expect((await stack.client.routers.list()).map((r) => r.name)).toEqual(['skills']);
    expect(await stack.client.routers.get('skills')).toMatchObject({ name: 'skills', rule: 'text' });
    const models = [];
    for await (const m of openai.models.list()) models.push(m);
    expect(models.find((m) => m.id === 'skills')).toMatchObject({ loraforge: { router: true, members: MEMBERS } });
  });

  it('answers a chat with the member it routes to, exactly as that member answers', async () => {
    const messages = [{ role: 'user' as const, content: 'How do I list the files in a directory, biggest first?' }];
    const routed = await openai.chat.completions.create({ model: 'skills', messages, max_tokens: 8, temperature: 0 });
    const field = (routed as unknown as { loraforge: { routed_to: string; router: string; fallback: boolean } }).loraforge;
    expect(field.router).toBe('skills');
    expect(MEMBERS).toContain(field.routed_to);
    expect(routed.model).toBe('skills');
    const direct = await openai.chat.completions.create({ model: field.routed_to, messages, max_tokens: 8, temperature: 0 });
    expect(routed.choices[0]!.message.content).toBe(direct.choices[0]!.message.content);

    const { data: stream, response } = await openai.chat.completions.create({ model: 'skills', messages, max_tokens: 8, temperature: 0, stream: true }).withResponse();
    expect(response.headers.get('x-loraforge-routed-to')).toBe(field.routed_to);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(direct.choices[0]!.message.content);

    const completion = await openai.completions.create({ model: 'skills', prompt: 'grep -r needle .', max_tokens: 4, temperature: 0 });
    expect(MEMBERS).toContain((completion as unknown as { loraforge: { routed_to: string } }).loraforge.routed_to);
  });

  it('blends the two nearest members when none is clearly nearest, and says so', async () => {
    const { router } = await stack.client.routers.create({ name: 'unsure', members: MEMBERS, blend: 0.6 });
    expect(router).toMatchObject({ blend: 0.6, margin: 0.075, fallback: null });
    const spec = (await stack.engine!.router('unsure'))!;
    let unsure: string | undefined;
    for (const item of await loadSuites()) {
      const to = await stack.engine!.route(spec, { kind: 'chat', messages: [{ role: 'user', content: item.prompt }] });
      if (!unsure && to.blend) unsure = item.prompt;
    }
    const messages = [{ role: 'user' as const, content: unsure! }];
    const routed = await openai.chat.completions.create({ model: 'unsure', messages, max_tokens: 8, temperature: 0 });
    const field = (routed as unknown as { loraforge: { routed_to: string; nearest: string; lead: number; blend: { members: string[]; weight: number } } }).loraforge;
    expect(field.blend.weight).toBe(0.6);
    expect(field.blend.members).toHaveLength(2);
    expect(field.blend.members[0]).toBe(field.nearest);
    for (const m of field.blend.members) expect(MEMBERS).toContain(m);
    expect(field.routed_to).toBe(field.blend.members.join('+'));
    expect(field.lead).toBeLessThan(0.075);
    const { data: stream, response } = await openai.chat.completions.create({ model: 'unsure', messages, max_tokens: 8, temperature: 0, stream: true }).withResponse();
    expect(response.headers.get('x-loraforge-routed-to')).toBe(field.routed_to);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe(routed.choices[0]!.message.content);
  });

  it('takes calibration prompts per member and a fallback', async () => {
    const { router } = await stack.client.routers.create({
      name: 'two',
      members: [
        { model: 'code-expert', prompts: ['Write a function that sorts a list.', 'Fix this TypeError in my loop.'] },
        { model: 'linux-commands-expert', prompts: ['How do I find large files?', 'Show disk usage per folder.'] },
      ],
      fallback: demo.manifest.baseModel,
      margin: 2, // nobody leads by 2 in cosine: always the fallback
    });
    expect(router.calibration).toEqual({ source: 'prompts', counts: [2, 2] });
    const answer = await openai.chat.completions.create({ model: 'two', messages: [{ role: 'user', content: 'hello' }], max_tokens: 2, temperature: 0 });
    expect((answer as unknown as { loraforge: { routed_to: string; fallback: boolean } }).loraforge).toMatchObject({
      routed_to: demo.manifest.baseModel,
      fallback: true,
    });
    expect((await stack.client.routers.remove('two')).name).toBe('two');
    expect((await status(stack.client.routers.get('two'))).status).toBe(404);
  });

  it('routes by the prompt text under rule "text"', async () => {
    const { router } = await stack.client.routers.create({
      name: 'words',
      rule: 'text',
      members: [
        { model: 'code-expert', prompts: ['Write a JavaScript function that sorts an array.', 'Write a function to parse JSON.'] },
        { model: 'linux-commands-expert', prompts: ['Show disk usage by folder.', 'Kill the process with PID 42.'] },
      ],
    });
    expect(router.rule).toBe('text');
    expect(router).not.toHaveProperty('dims'); // the fitted vectors stay in the registry
    for (const [content, member] of [
      ['Write a function that sorts the array of users.', 'code-expert'],
      ['Show the disk usage of /var by folder.', 'linux-commands-expert'],
    ] as const) {
      const answer = await openai.chat.completions.create({ model: 'words', messages: [{ role: 'user', content }], max_tokens: 2, temperature: 0 });
      expect((answer as unknown as { loraforge: { routed_to: string } }).loraforge.routed_to, content).toBe(member);
    }
    await stack.client.routers.remove('words');
  });

  it('says what to fix', async () => {
    const bad = (body: Record<string, unknown>) => status(stack.client.routers.create(body as never));
    expect(await bad({ name: 'x', members: ['code-expert', 'nope'] })).toMatchObject({ status: 400, message: expect.stringMatching(/'nope' is not a registered adapter/) });
    expect(await bad({ name: 'code-expert', members: MEMBERS })).toMatchObject({ status: 409, message: expect.stringMatching(/already a model name/) });
    expect(await bad({ name: 'skills', members: MEMBERS })).toMatchObject({ status: 409, message: expect.stringMatching(/exists/) });
    expect(await bad({ name: 'x', members: ['code-expert'] })).toMatchObject({ status: 400 });
    expect(await bad({ name: 'x', members: ['code-expert', 'code-expert'] })).toMatchObject({ status: 400, message: expect.stringMatching(/listed twice/) });
    expect(await bad({ name: 'x', members: ['code-expert', 'skills'] })).toMatchObject({ status: 400, message: expect.stringMatching(/is a router/) });
    expect(await bad({ name: 'x', members: [{ model: 'code-expert', prompts: ['a'] }, 'linux-commands-expert'] })).toMatchObject({
      status: 400,
      message: expect.stringMatching(/every member or for none/),
    });
    expect(await bad({ name: 'x', members: [{ model: 'code-expert', category: 'poetry' }, 'linux-commands-expert'] })).toMatchObject({
      status: 400,
      message: expect.stringMatching(/no suite has items of category 'poetry'/),
    });
    expect(await bad({ name: 'x', members: MEMBERS, fallback: 'nope' })).toMatchObject({ status: 400, message: expect.stringMatching(/fallback 'nope'/) });
    expect(await bad({ name: 'x', members: MEMBERS, fallback: 'code-expert', blend: 0.5 })).toMatchObject({ status: 400, message: expect.stringMatching(/a fallback or a blend, not both/) });
    expect(await bad({ name: 'x', members: MEMBERS, blend: 2 })).toMatchObject({ status: 400, message: expect.stringMatching(/blend/) });
    // a blend's rank is the sum of its two members': refused when created, not when a request needs it
    await stack.client.adapters.upload(await writeTestAdapter(path.join(root, 'wide'), { hidden: 128, kv: 64, layers: 4, rank: 16 }, 3), { name: 'wide' });
    expect(await bad({ name: 'x', members: ['wide', 'code-expert'], blend: 0.6 })).toMatchObject({
      status: 400,
      message: expect.stringMatching(/^a blend of wide and code-expert has rank \d+, above the served graph's max rank 16: rebuild the model with --max-rank \d+ or more \(loraforge build-model <checkpoint> --max-rank \d+\), or give the router a fallback/),
    });
    expect((await stack.client.routers.create({ name: 'wide-alone', members: [{ model: 'wide', category: 'linux-commands' }, 'code-expert'] })).router.blend).toBeNull();
    await stack.client.routers.remove('wide-alone');
    expect((await status(stack.client.routers.remove('nope'))).status).toBe(404);
  });

  it('refuses calibration prompts too varied for a text router, quickly, and goes on serving', async () => {
    // about 800 KB of varied text (under the 1 MB body limit): ~700 000 distinct n-grams, which used to be fitted as
    // one dense vector per prompt (GBs) and stored as a record of hundreds of MB
    const random = seeded(1);
    const char = () => 'abcdefghijklmnopqrstuvwxyz  '[Math.floor(random() * 28)];
    const prompts = () => Array.from({ length: 50 }, () => Array.from({ length: 4000 }, char).join(''));
    const started = Date.now();
    const refused = await status(stack.client.routers.create({ name: 'huge', members: MEMBERS.map((model) => ({ model, prompts: prompts() })) }));
    expect(refused).toMatchObject({ status: 400, message: expect.stringMatching(/^the calibration prompts hold \d+ distinct character n-grams, more than a text router keeps \(65536\): give fewer or shorter prompts/) });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect((await stack.client.routers.list()).map((r) => r.name)).not.toContain('huge');
    const answer = await openai.chat.completions.create({ model: 'skills', messages: [{ role: 'user', content: 'List the files in /tmp' }], max_tokens: 2 });
    expect(answer.choices[0]!.message.content).toBeTypeOf('string');
    // a megabyte prompt to a router is refused for its length before any routing work on it
    const huge = openai.chat.completions.create({ model: 'skills', messages: [{ role: 'user', content: 'List the files in /tmp '.repeat(40_000) }], max_tokens: 2 });
    await expect(huge).rejects.toThrow(/the prompt holds far more than \d+ tokens, this model's context: shorten it/);
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${stack.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/v1/routers']!)).toEqual(expect.arrayContaining(['get', 'post']));
    expect(Object.keys(doc.paths['/v1/routers/{name}']!)).toEqual(expect.arrayContaining(['get', 'delete']));
  });
});

describe('evals of a router', () => {
  it('scores the test part only, never a calibration item, and reports retention per category and routing accuracy', async () => {
    const created = await stack.client.evals.create({ models: ['skills', 'unsure'] });
    const status = await stack.client.evals.wait(created.id);
    expect(status.state).toBe('completed');
    const report = status.report!;
    expect(report.part).toBe('test');
    const all = await loadSuites();
    const parts = splitSuite(all);
    const calibration = new Set((await stack.client.routers.get('skills')).calibration.itemIds);
    expect(report.items.length).toBe(all.filter((i) => parts.get(i.id) === 'test').length);
    for (const item of report.items) {
      expect(parts.get(item.id)).toBe('test');
      expect(calibration.has(item.id)).toBe(false);
    }
    const router = report.models.find((m) => m.model === 'skills')!;
    expect(router.kind).toBe('router');
    expect(Object.keys(router.categories).sort()).toEqual([...CATEGORIES].sort());
    for (const name of ['skills', 'unsure']) {
      const routing = report.routing![name]!;
      expect(routing.items).toBe(report.items.length);
      expect(Object.values(routing.chosen).reduce((a, b) => a + b, 0)).toBe(report.items.length);
      expect(Object.keys(routing.chosen).every((m) => m.split('+').every((part) => MEMBERS.includes(part)))).toBe(true);
      // the accuracy is what the router's own choices on these items say (a blend is not a right route)
      const spec = (await stack.engine!.router(name))!;
      let right = 0;
      let blends = 0;
      for (const item of report.items) {
        const prompt = all.find((i) => i.id === item.id)!.prompt;
        const to = await stack.engine!.route(spec, { kind: 'chat', messages: [{ role: 'user', content: prompt }] });
        if (to.blend) blends++;
        else if (spec.members.find((m) => m.model === to.model)?.category === item.category) right++;
      }
      expect(routing.accuracy, name).toBeCloseTo(right / report.items.length, 10);
      expect(routing.blends, name).toBe(blends);
      expect(blends > 0, name).toBe(name === 'unsure');
    }
    expect(formatEvalReport(report)).toMatch(/scored the test part of the suites\n[\s\S]*\nrouting of skills: \d+% of \d+ items to a member of their category \(code \d+%/);
    expect(formatEvalReport(report)).toMatch(/\nrouting of unsure: \d+% of \d+ items to a member of their category \([^)]*\), \d+ to a blend of the two nearest\n/);
  });

  it('refuses to score the calibration part, and scores adapters on every item by default', async () => {
    expect(await status(stack.client.evals.create({ models: ['skills'], part: 'all' }))).toMatchObject({
      status: 400,
      message: expect.stringMatching(/calibration prompts of router skills/),
    });
    const code = await loadSuites(['code']);
    const plain = await stack.client.evals.create({ models: ['code-expert'], suites: ['code'] });
    expect(plain.items).toBe(code.length);
    // the tune part is calibration and dev; a router's eval of it still drops the items the router learned from
    const parts = splitSuite(code);
    const tune = code.filter((i) => parts.get(i.id) !== 'test');
    expect((await stack.client.evals.create({ models: ['code-expert'], suites: ['code'], part: 'tune' })).items).toBe(tune.length);
    const learned = new Set((await stack.client.routers.get('skills')).calibration.itemIds);
    const routed = await stack.client.evals.create({ models: ['skills'], suites: ['code'], part: 'tune' });
    expect(routed.items).toBe(tune.filter((i) => !learned.has(i.id)).length);
    expect(routed.items).toBeLessThan(tune.length);
  });
});

describe('merge warnings through the API', () => {
  it('queues a recipe likely to hurt, with warnings saying why and what to try', async () => {
    const risky = await stack.client.merges.create({ adapters: ['code-expert', 'linux-commands-expert'], method: 'linear', weights: [1, 1], name: 'too-strong' });
    expect(risky.warnings).toEqual([expect.stringMatching(/^linear with weights summing to 2 .* Try weights summing to about 1 \(e\.g\. 0\.5 each\)/)]);
    const fine = await stack.client.merges.create({ adapters: ['code-expert', 'linux-commands-expert'], method: 'linear', weights: [0.5, 0.5], name: 'halves' });
    expect(fine.warnings).toBeUndefined();
  });
});
