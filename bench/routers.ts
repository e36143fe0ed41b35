// npm run bench:routers — routing rules compared on the suites, and what routing costs (docs/ROUTERS.md).
//
// For each rule (text, value-last, value-mid, logprobs; plus "likelihood": the member under which the prompt is most
// likely, which needs a score pass per member) a router over one adapter per category is calibrated on at most 5
// calibration items per category and asked the dev and test items (never the calibration ones): routing accuracy
// (the item's category against the member's), the share sent to the fallback at the default margin, and the lead
// of right and wrong choices; and the text rule's ceiling on the suites: each item routed by all the others. With
// LORAFORGE_ROUTER_RETENTION=1 it also scores the references of the test part under base, experts and the router:
// retention per category, as evals compute it; and for the text router with blends (the two nearest members
// answering when none is clearly nearest) over a grid of weights and margins, chosen on the dev part, reported on
// the test part; each grid point's greedy answers to the test part (128 tokens) are also checked, as
// `loraforge eval --checks` does, since a blend can keep perplexity and lose answers.
// TTFT: a 128-token prompt, one token, the text and value-last routers against the plain adapter each routes to,
// interleaved, medians.
//
// Model: LORAFORGE_ROUTER_MODEL (a checkpoint dir with adapters/<category>/ beside it, e.g. assets/demo) or the
// random demo model (whose base features still tell the suites' prompts apart). Run under `nice`.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { checkItems } from '../src/eval/evaluate.js';
import { itemsOfPart, calibrationItems } from '../src/eval/split.js';
import { loadSuites, type SuiteItem } from '../src/eval/suite.js';
import { DEMO_SKILLS, makeDemoModel } from '../src/inference/demo.js';
import type { RouterSpec } from '../src/inference/engine/index.js';
import { ROUTING_RULES, DEFAULT_BLEND_MARGIN, DEFAULT_BLEND_WEIGHT, DEFAULT_ROUTING_MARGIN, chooseMember, fitCentroids, type ModelRoutingRule, type RoutingRule } from '../src/inference/engine/routing.js';
import { fitTextCentroids, projectText, textFeature } from '../src/inference/engine/text-features.js';
import { prepareModel } from '../src/inference/prepare.js';
import { targetsOfAdapters } from '../src/inference/builder/adapter-targets.js';
import { startBenchEngine } from './engine.js';
import { retentionScorer } from './retention.js';
import { median } from './stats.js';
import { log } from './log.js';

const dataDir = path.resolve(process.env.LORAFORGE_DATA_DIR ?? 'data');
const asChat = (prompt: string) => ({ kind: 'chat' as const, messages: [{ role: 'user' as const, content: prompt }] });

async function modelAndAdapters(): Promise<{ checkpoint: string; adapters: Array<{ name: string; dir: string }> }> {
  const given = process.env.LORAFORGE_ROUTER_MODEL;
  if (given) {
    const root = path.dirname(path.resolve(given));
    // the skills whose adapters are there (all four once trained; none: rules are compared on the base alone)
    const found = DEMO_SKILLS.map((name) => ({ name, dir: path.join(root, 'adapters', name) })).filter((a) => existsSync(path.join(a.dir, 'adapter_config.json')));
    return { checkpoint: path.resolve(given), adapters: found.length >= 2 ? found : DEMO_SKILLS.map((name) => ({ name, dir: path.join(root, 'adapters', name) })) };
  }
  const dir = path.join(dataDir, 'bench-routers-demo');
  if (!existsSync(path.join(dir, 'base', 'config.json'))) await makeDemoModel(dir);
  return { checkpoint: path.join(dir, 'base'), adapters: DEMO_SKILLS.map((name) => ({ name, dir: path.join(dir, 'adapters', name) })) };
}

async function main(): Promise<void> {
  const { checkpoint, adapters } = await modelAndAdapters();
  const built = await prepareModel(checkpoint, { dataDir, dtype: 'int4', slots: 8, maxRank: 32, targets: await targetsOfAdapters(adapters.map((a) => a.dir)) });
  const routers = new Map<string, RouterSpec>();
  const engine = await startBenchEngine(built.dir, adapters, {
    routers: { resolve: async (n) => routers.get(n) ?? null, list: async () => [...routers.values()] },
    maxQueue: 64,
  });
  try {
    const categories = adapters.map((a) => a.name);
    const all = (await loadSuites([], process.env.LORAFORGE_SUITES_DIR ?? undefined)).filter((i) => categories.includes(i.category));
    // routing needs only the base model: without the adapters (a base still training), rules are compared alone
    const haveAdapters = adapters.every((a) => existsSync(path.join(a.dir, 'adapter_config.json')));
    const asked = [...itemsOfPart(all, 'dev'), ...itemsOfPart(all, 'test')];
    const calib = categories.map((c) => calibrationItems(all, c, 5));
    log(`${asked.length} dev+test items; calibration ${calib.map((c) => c.length).join('/')} per category`);
    const results: Record<string, unknown> = {};
    const text = (item: SuiteItem) => textFeature(engine.promptText(asChat(item.prompt)));
    for (const rule of ROUTING_RULES) {
      const feats = async (items: SuiteItem[], modelRule: ModelRoutingRule) => {
        const out: Float32Array[] = [];
        for (let k = 0; k < items.length; k += 8) out.push(...(await Promise.all(items.slice(k, k + 8).map((i) => engine.routeFeatures(asChat(i.prompt), modelRule)))));
        return out;
      };
      const fitted = rule === 'text' ? fitTextCentroids(calib.map((items) => items.map(text))) : fitCentroids(await Promise.all(calib.map((items) => feats(items, rule))));
      const features = rule === 'text' ? asked.map((i) => projectText(text(i), fitted.dims!)) : await feats(asked, rule);
      const choices = features.map((f) => chooseMember(fitted, f, DEFAULT_ROUTING_MARGIN));
      const right = choices.filter((c, i) => categories[c.nearest] === asked[i]!.category);
      const leads = (ok: boolean) => choices.filter((c, i) => (categories[c.nearest] === asked[i]!.category) === ok).map((c) => c.lead);
      results[rule] = {
        accuracy: right.length / asked.length,
        fallbackShare: choices.filter((c) => c.member === null).length / asked.length,
        medianLeadRight: leads(true).length ? median(leads(true)) : null,
        medianLeadWrong: leads(false).length ? median(leads(false)) : null,
      };
      routers.set(rule, { name: rule, rule: rule as RoutingRule, margin: 0, members: categories.map((model) => ({ model })), fallback: null, fitted });
      log(`${rule}: ${JSON.stringify(results[rule])}`);
    }
    // How far labels carry the text rule on these suites: every item, of every part, routed by the centroids of all
    // the other items (the whole suite but itself as calibration). What this misses, no budget of ≤ 5 prompts gets.
    const allText = all.map(text);
    const looRight = all.filter((item, i) => {
      const fitted = fitTextCentroids(categories.map((c) => all.flatMap((other, j) => (j !== i && other.category === c ? [allText[j]!] : []))));
      return categories[chooseMember(fitted, projectText(allText[i]!, fitted.dims), 0).nearest] === item.category;
    });
    results.textLeaveOneOut = { accuracy: looRight.length / all.length, items: all.length, wrong: all.filter((i) => !looRight.includes(i)).map((i) => `${i.category}: ${i.prompt}`) };
    log(`text, leave one out over all ${all.length} items: ${looRight.length} right`);
    if (!haveAdapters) {
      log('adapters missing: likelihood, retention and TTFT skipped');
      process.stdout.write(`${JSON.stringify({ model: checkpoint, items: asked.length, results }, null, 2)}\n`);
      return;
    }
    // likelihood: Σ log p(prompt) under each adapter, the most likely wins (one score pass per member)
    const lik = await engine.score({
      rows: asked.flatMap((item) => categories.map((model) => ({ model, input: { kind: 'text' as const, text: '' }, continuation: item.prompt }))),
    });
    let likRight = 0;
    asked.forEach((item, i) => {
      const sums = categories.map((_, m) => lik.rows[i * categories.length + m]!.logprobSum);
      if (categories[sums.indexOf(Math.max(...sums))] === item.category) likRight++;
    });
    results.likelihood = { accuracy: likRight / asked.length };
    log(`likelihood: ${JSON.stringify(results.likelihood)}`);

    if (process.env.LORAFORGE_ROUTER_RETENTION === '1') {
      const test = itemsOfPart(all, 'test');
      const retention = { dev: await retentionScorer(engine, itemsOfPart(all, 'dev'), categories), test: await retentionScorer(engine, test, categories) };
      for (const rule of ROUTING_RULES) {
        (results[rule] as Record<string, unknown>).retention = await retention.test(rule);
        log(`${rule} retention: ${JSON.stringify((results[rule] as Record<string, unknown>).retention)}`);
      }
      // blends when unsure (text, no fallback): weight × margin, chosen on the dev part, reported on the test part
      const grid: Array<{ weight: number | null; margin: number; dev: number | null; test: number | null; testMean: number | null; blends: number; checksPassed: Record<string, number> }> = [];
      for (const weight of [null, 0.5, 0.6, 0.75, 1]) {
        for (const margin of weight === null ? [0] : [0.02, 0.05, 0.075, 0.1]) {
          const name = `text-blend-${weight}-${margin}`;
          routers.set(name, { ...routers.get('text')!, name, margin, blend: weight });
          const routed = await Promise.all(test.map((i) => engine.route(routers.get(name)!, asChat(i.prompt))));
          const t = await retention.test(name);
          const passed = (await checkItems(engine, test, [name], 'chat', 128)).get(name)!;
          const checksPassed = Object.fromEntries(categories.map((c) => [c, test.filter((item, i) => item.category === c && passed[i] === true).length]));
          grid.push({ weight, margin, dev: (await retention.dev(name)).worst, test: t.worst, testMean: t.mean, blends: routed.filter((r) => r.blend).length / test.length, checksPassed });
          log(`blend ${weight} margin ${margin}: ${JSON.stringify(grid.at(-1))}`);
        }
      }
      const byDev = [...grid].sort((a, b) => (b.dev ?? -Infinity) - (a.dev ?? -Infinity))[0]!;
      results.blends = { grid, chosenOnDev: byDev, shipped: { weight: DEFAULT_BLEND_WEIGHT, margin: DEFAULT_BLEND_MARGIN } };
    }

    // TTFT of a chat prompt of about 128 tokens (as users send them): each rule's router vs the adapter it routes
    // to, one token each, interleaved
    let content = all[0]!.prompt.repeat(40);
    const tokens = (text: string) => engine.tokenizer.encodeChat(asChat(text).messages).length;
    while (tokens(content) > 128) content = content.slice(0, -1);
    const input = asChat(content);
    const time = async (model: string) => {
      const t0 = performance.now();
      await engine.generate({ model, input, maxTokens: 1, temperature: 0 });
      return performance.now() - t0;
    };
    const ttft: Record<string, unknown> = { promptTokens: tokens(content) };
    for (const rule of ['text', 'value-last'] as const) {
      const member = (await engine.generate({ model: rule, input, maxTokens: 1, temperature: 0 })).routedTo!.model;
      const plain: number[] = [];
      const routed: number[] = [];
      for (let r = 0; r < Number(process.env.BENCH_REPEATS ?? 15); r++) {
        plain.push(await time(member));
        routed.push(await time(rule));
      }
      ttft[rule] = { adapterMs: median(plain), routerMs: median(routed), ratio: median(routed) / median(plain) };
      log(`ttft 128 tokens, ${rule}: ${JSON.stringify(ttft[rule])}`);
    }
    results.ttft128 = ttft;
    process.stdout.write(`${JSON.stringify({ model: checkpoint, items: asked.length, results }, null, 2)}\n`);
  } finally {
    await engine.close();
  }
}

await main();
