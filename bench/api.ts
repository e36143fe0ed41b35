// The API's cost on top of the work it fronts. Run with `npm run bench:api` (needs Redis at REDIS_URL).
//  1. register + merge of four 8B-shaped adapters (hidden 4096, kv 1024, 32 layers, r=16 on q,k,v,o) through
//     the API and a worker, against the merge engine run directly on the same files: the overhead ratio.
//  2. GET /v1/adapters with 200 adapters registered, 50 concurrent clients (autocannon): latency percentiles.
// Medians of RUNS runs; the machine is shared (2 cores, other helpers' builds and tests): read the ratios.
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { mergeToDirectory } from '../src/merge/index.js';
import { writeTestAdapter } from '../test/helpers/adapters.js';
import { startTestService } from '../test/helpers/service.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const METHOD = (process.env.BENCH_METHOD ?? 'linear') as 'linear' | 'ties';
const parts = new Set((process.env.BENCH_PARTS ?? 'merge,list').split(','));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function benchMerge(work: string): Promise<void> {
  const shape = { hidden: 4096, kv: 1024, layers: 32, rank: 16, dtype: 'BF16' as const, baseModel: 'meta-llama/Llama-3.1-8B' };
  const dirs: string[] = [];
  for (let i = 0; i < 4; i++) dirs.push(await writeTestAdapter(path.join(work, `skill-${i}`), shape, 100 + i));
  const options = { method: METHOD, weights: [0.25, 0.25, 0.25, 0.25], ...(METHOD === 'ties' ? { density: 0.3 } : {}) };

  const engine: number[] = [];
  const register: number[] = [];
  const merge: number[] = [];
  const inWorker: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const out = path.join(work, `direct-${run}`);
    let t = performance.now();
    await mergeToDirectory(dirs, out, options);
    engine.push(performance.now() - t);
    await rm(out, { recursive: true, force: true });

    const svc = await startTestService({ name: 'bench-merge', server: { uploadLimitBytes: 1 << 30 } });
    try {
      t = performance.now();
      for (let i = 0; i < 4; i++) await svc.client.adapters.upload(dirs[i]!, { name: `skill-${i}` });
      register.push(performance.now() - t);
      t = performance.now();
      const queued = await svc.client.merges.create({ adapters: dirs.map((_, i) => `skill-${i}`), ...options });
      const final = await svc.client.merges.wait(queued.id);
      if (final.state !== 'completed') throw new Error(`merge ${final.state}: ${final.error?.message}`);
      merge.push(performance.now() - t);
      inWorker.push((final.result?.timings?.engineSeconds ?? NaN) * 1000);
      const ms = (iso?: string) => (iso ? Date.parse(iso) : NaN);
      const timings = ((await svc.client.adapters.get(final.name)).diagnostics as { timings?: Record<string, number> }).timings;
      console.log(
        `  run ${run + 1}: engine ${seconds(engine[run]!)}; via API ${seconds(merge[run]!)} = queued ${ms(final.startedAt) - ms(final.createdAt)} ms, ` +
          `worker ${seconds(ms(final.finishedAt) - ms(final.startedAt))} (engine in the worker's thread ${final.result?.timings?.engineSeconds} s: ` +
          `read ${timings?.readSeconds} s, merge ${timings?.mergeSeconds} s; registering the result ${final.result?.timings?.registerSeconds} s)`,
      );
    } finally {
      await svc.close();
    }
  }
  const e = median(engine);
  const w = median(inWorker);
  const m = median(merge);
  const r = median(register);
  const pct = (x: number, base: number) => `${(((x - base) / base) * 100).toFixed(1)} %`;
  console.log(`four 8B-shaped adapters (BF16, ${METHOD}), medians of ${RUNS}:`);
  console.log(`  engine alone, this process (mergeToDirectory)   ${seconds(e)}`);
  console.log(`  engine inside the worker's thread               ${seconds(w)}`);
  console.log(`  merge through API + queue + worker              ${seconds(m)}  overhead ${pct(m, w)} over the engine in the same job`);
  console.log(`  register the four through the API               ${seconds(r)}  (upload, validate, hash, store)`);
  console.log(`  register + merge through the API                ${seconds(r + m)}  overhead ${pct(r + m, w)} (vs the run alone: ${pct(r + m, e)})`);
}

async function benchList(work: string): Promise<void> {
  const svc = await startTestService({ name: 'bench-list' });
  try {
    const dir = path.join(work, 'tiny');
    for (let i = 0; i < 200; i++) {
      await writeTestAdapter(dir, { hidden: 16, kv: 8, layers: 2, rank: 2 }, 1000 + i);
      await svc.client.adapters.upload(dir, { name: `adapter-${String(i).padStart(3, '0')}`, category: i % 2 ? 'code' : 'ops', description: 'a benchmark adapter' });
    }
    // baseline in the same run: a bare node:http server answering the same bytes (the floor on this machine now)
    const body = Buffer.from(await (await fetch(`${svc.url}/v1/adapters`)).arrayBuffer());
    const bare = http.createServer((_req, res) => {
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end(body);
    });
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
    const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/`;
    const ours = { p50: [] as number[], p99: [] as number[], rps: [] as number[] };
    const base = { p50: [] as number[], p99: [] as number[], rps: [] as number[] };
    const measure = async (url: string, into: typeof ours) => {
      const result = await autocannon({ url, connections: 50, duration: 8 });
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
      into.p50.push(result.latency.p50);
      into.p99.push(result.latency.p99);
      into.rps.push(result.requests.average);
    };
    try {
      for (let run = 0; run < RUNS; run++) {
        await measure(`${svc.url}/v1/adapters`, ours);
        await measure(bareUrl, base);
      }
    } finally {
      bare.close();
    }
    console.log(`GET /v1/adapters (200 adapters, ${body.length} bytes), 50 connections, medians of ${RUNS} runs of 8 s:`);
    console.log(`  loraforge API      p50 ${median(ours.p50)} ms  p99 ${median(ours.p99)} ms  ${Math.round(median(ours.rps))} req/s`);
    console.log(`  bare node:http     p50 ${median(base.p50)} ms  p99 ${median(base.p99)} ms  ${Math.round(median(base.rps))} req/s  (same bytes, same run)`);
    console.log(`  ratio              p99 ×${(median(ours.p99) / median(base.p99)).toFixed(2)}  throughput ×${(median(ours.rps) / median(base.rps)).toFixed(2)}`);
  } finally {
    await svc.close();
  }
}

const work = await mkdtemp(path.join(os.tmpdir(), 'lf-bench-api-'));
try {
  if (parts.has('list')) await benchList(work);
  if (parts.has('merge')) await benchMerge(work);
} finally {
  await rm(work, { recursive: true, force: true });
}
