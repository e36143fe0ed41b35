// The API's cost on top of the work it fronts. Run with `npm run bench:api` (needs Redis at REDIS_URL).
//  1. register + merge of four 8B-shaped adapters (hidden 4096, kv 1024, 32 layers, r=16 on q,k,v,o) through
//     the API and a worker, against the merge engine run directly on the same files: the overhead ratio.
//  2. GET /v1/adapters with 200 adapters registered, 50 concurrent clients (autocannon): latency percentiles.
// Medians of RUNS runs; the machine is shared (2 cores, other helpers' builds and tests): read the ratios, and
// the load average printed with them. The API logs at info as in production (to /dev/null).
// Targets (docs/BENCHMARKS.md): register + merge overhead over the engine alone <= 10 %; list p99 <= 20 ms.
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { pino } from 'pino';
import { mergeToDirectory } from '../src/merge/index.js';
import { parseMergeOptions } from '../src/merge/options.js';
import { MergeThreads } from '../src/queue/run-merge.js';
import { writeTestAdapter } from '../test/helpers/adapters.js';
import { startTestService } from '../test/helpers/service.js';
import { median } from './stats.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const METHOD = (process.env.BENCH_METHOD ?? 'linear') as 'linear' | 'ties';
const parts = new Set((process.env.BENCH_PARTS ?? 'merge,list').split(','));

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
const log = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false }));
const loadavg = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

async function benchMerge(work: string): Promise<void> {
  const shape = { hidden: 4096, kv: 1024, layers: 32, rank: 16, dtype: 'BF16' as const, baseModel: 'meta-llama/Llama-3.1-8B' };
  const dirs: string[] = [];
  for (let i = 0; i < 4; i++) dirs.push(await writeTestAdapter(path.join(work, `skill-${i}`), shape, 100 + i));
  const options = { method: METHOD, weights: [0.25, 0.25, 0.25, 0.25], ...(METHOD === 'ties' ? { density: 0.3 } : {}) };

  const engine: number[] = [];
  const engineThread: number[] = [];
  const register: number[] = [];
  const merge: number[] = [];
  const inWorker: number[] = [];
  // the engine alone in a worker thread started ahead, as the worker runs it (its own heap; the main thread's
  // run is slower and noisier here, and would flatter the API), and on the main thread for reference
  const threads = new MergeThreads();
  const direct = async (out: string): Promise<number> => {
    const t = performance.now();
    await threads.run(
      { inputDirs: dirs, outDir: out, options: parseMergeOptions(options), labels: dirs, compute: { device: 'cpu' }, denseCacheBytes: 1 << 30 },
      { onProgress: () => undefined, signal: new AbortController().signal },
    );
    await rm(out, { recursive: true, force: true });
    return performance.now() - t;
  };
  // a first run loads ONNX Runtime and warms the JIT: not counted, so run 1 is as warm as the others
  await direct(path.join(work, 'warm-up'));
  await mergeToDirectory(dirs, path.join(work, 'warm-up'), options);
  await rm(path.join(work, 'warm-up'), { recursive: true, force: true });
  for (let run = 0; run < RUNS; run++) {
    const out = path.join(work, `direct-${run}`);
    let t = performance.now();
    await mergeToDirectory(dirs, out, options);
    engine.push(performance.now() - t);
    await rm(out, { recursive: true, force: true });
    engineThread.push(await direct(out));

    const svc = await startTestService({ name: 'bench-merge', server: { uploadLimitBytes: 1 << 30 }, log });
    try {
      // let the service finish starting (its worker starts a merge thread ahead, loading the engine): that is
      // not part of registering, and on 2 cores it slowed the first uploads by a third
      await new Promise((resolve) => setTimeout(resolve, 3000));
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
        `  run ${run + 1}: engine ${seconds(engineThread[run]!)} in a thread, ${seconds(engine[run]!)} on the main thread; register ${seconds(register[run]!)}; via API ${seconds(merge[run]!)} = queued ${ms(final.startedAt) - ms(final.createdAt)} ms, ` +
          `worker ${seconds(ms(final.finishedAt) - ms(final.startedAt))} (engine in the worker's thread ${final.result?.timings?.engineSeconds} s: ` +
          `read ${timings?.readSeconds} s, merge ${timings?.mergeSeconds} s; registering the result ${final.result?.timings?.registerSeconds} s)`,
      );
    } finally {
      await svc.close();
    }
  }
  await threads.close();
  const e = median(engineThread);
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  // overheads per run (API and engine measured a few seconds apart), then their median: less exposed to load drift
  const overhead = (xs: number[], base: number[]) => median(xs.map((x, i) => x / base[i]! - 1));
  const both = register.map((r, i) => r + merge[i]!);
  console.log(`four 8B-shaped adapters (BF16, ${METHOD}), medians of ${RUNS}:`);
  console.log(`  engine alone, in a worker thread (the baseline)  ${seconds(e)}`);
  console.log(`  engine alone, on the bench's main thread         ${seconds(median(engine))}`);
  console.log(`  engine inside the worker's thread, in the job    ${seconds(median(inWorker))}`);
  console.log(`  merge through API + queue + worker               ${seconds(median(merge))}  overhead ${pct(overhead(merge, inWorker))} over the engine in the same job`);
  console.log(`  register the four through the API                ${seconds(median(register))}  = ${pct(overhead(register, engineThread) + 1)} of the engine alone (upload, validate, hash, store)`);
  console.log(`  register + merge through the API                 ${seconds(median(both))}  overhead ${pct(overhead(both, engineThread))} over the engine alone`);
  console.log(`  target: register + merge overhead <= 10 %: ${verdict(overhead(both, engineThread) <= 0.1)}`);
}

async function benchList(work: string): Promise<void> {
  // the limiter still counts every request; its limit is just above what autocannon sends in a minute
  const svc = await startTestService({ name: 'bench-list', log, server: { rateLimitPerMinute: 10_000_000 } });
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
    console.log(`  target: p99 <= 20 ms: ${verdict(median(ours.p99) <= 20)}`);
  } finally {
    await svc.close();
  }
}

const work = await mkdtemp(path.join(os.tmpdir(), 'lf-bench-api-'));
try {
  console.log(`load average at the start: ${loadavg()} (${os.cpus().length} cores)`);
  if (parts.has('list')) await benchList(work);
  if (parts.has('merge')) await benchMerge(work);
  console.log(`load average at the end: ${loadavg()}`);
} finally {
  await rm(work, { recursive: true, force: true });
}
