// npm run bench:build [-- --shape smollm2-135m|llama-3.2-1b] [--keep DIR]
// Builds a random checkpoint of a real model's shapes and reports, against the time to merely read the checkpoint
// (the baseline, measured in the same run): build time per dtype, output size, peak RSS during the build, and the
// time of a cached rebuild. Machines here are shared and noisy: read the ratios, not the seconds.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Checkpoint } from '../src/formats/checkpoint.js';
import { buildModel, type BuildOptions } from '../src/inference/builder/index.js';
import { writeRandomCheckpoint } from '../src/inference/demo.js';

const SHAPES: Record<string, Record<string, unknown>> = {
  'smollm2-135m': {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30,
    num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152, max_position_embeddings: 8192, rms_norm_eps: 1e-5,
    rope_theta: 100000, tie_word_embeddings: true, torch_dtype: 'bfloat16',
  },
  'llama-3.2-1b': {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16,
    num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, vocab_size: 128256, max_position_embeddings: 131072,
    rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: true, torch_dtype: 'bfloat16',
    rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  },
};

const { values } = parseArgs({ options: { shape: { type: 'string', default: 'smollm2-135m' }, keep: { type: 'string' } } });
const config = SHAPES[values.shape!];
if (!config) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);

const mib = (n: number) => `${(n / 1024 ** 2).toFixed(1)} MiB`;
const root = values.keep ?? (await mkdtemp(path.join(tmpdir(), 'loraforge-bench-build-')));
const ckpt = path.join(root, 'checkpoint');
try {
  let t = performance.now();
  await writeRandomCheckpoint(ckpt, config, { seed: 1, maxShardBytes: 2_000_000_000 });
  console.log(`random ${values.shape} checkpoint written in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // baseline: read every tensor as float32, as the builder does, and nothing else
  const checkpoint = await Checkpoint.open(ckpt);
  let params = 0;
  let bytes = 0;
  t = performance.now();
  for (const name of checkpoint.tensorNames) {
    const data = await checkpoint.readFloat32(name);
    params += data.length;
    bytes += checkpoint.info(name).end - checkpoint.info(name).begin;
  }
  const readSeconds = (performance.now() - t) / 1000;
  await checkpoint.close();
  console.log(`baseline: read ${(params / 1e6).toFixed(0)} M params (${mib(bytes)} bf16) in ${readSeconds.toFixed(1)} s`);

  for (const dtype of ['int4', 'fp32'] as const) {
    const options: BuildOptions = { dataDir: path.join(root, 'data'), dtype };
    let peak = process.memoryUsage().rss;
    const before = peak;
    t = performance.now();
    const built = await buildModel(ckpt, { ...options, onProgress: () => (peak = Math.max(peak, process.memoryUsage().rss)) });
    const seconds = (performance.now() - t) / 1000;
    const size = Object.values(built.manifest.files.bytes).reduce((a, b) => a + b, 0);
    t = performance.now();
    const again = await buildModel(ckpt, options);
    const cachedMs = performance.now() - t;
    console.log(
      `${dtype}: built in ${seconds.toFixed(1)} s = ${(seconds / readSeconds).toFixed(2)}x the read baseline; ` +
        `output ${mib(size)} (${(size / bytes).toFixed(2)}x the checkpoint); peak RSS ${mib(peak)} (+${mib(peak - before)} over the start); ` +
        `cached rebuild ${cachedMs.toFixed(0)} ms (cached: ${again.cached})`,
    );
  }
} finally {
  if (!values.keep) await rm(root, { recursive: true, force: true });
}
