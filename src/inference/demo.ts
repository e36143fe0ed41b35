// A random demo model (`loraforge make-demo-model`, tests, benchmarks): a small Llama-architecture checkpoint and four
// PEFT adapters named after the product's skills, deterministic from a seed. `npm start` serves the trained one in
// assets/demo instead (demo-assets.ts). Real in format (config.json, bf16 safetensors, a trained byte-level BPE
// tokenizer.json, tokenizer_config.json with a chat template, generation_config.json, PEFT adapter dirs), so it goes
// through the same code as a downloaded checkpoint; random in content, so its text is nonsense.
//
// The weights are random values on the 4-bit grid (per block of 32 inputs: a power-of-two scale times integers in
// [-7, 7], one of them ±8), so the int4 build stores them exactly and int4 and fp32 builds answer alike; only the
// int8 activations of int4's fast path differ.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError } from '../errors.js';
import { writeDirAtomic } from '../formats/atomic.js';
import { ShardedCheckpointWriter } from '../formats/checkpoint-writer.js';
import { writeAdapter, type LoraAdapter, type LoraModule } from '../formats/peft.js';
import { plainAdapterConfig } from '../formats/peft-config.js';
import { makeDemoTokenizer } from './demo-tokenizer.js';
import { SeededRandom } from './rng.js';

export const DEMO_SKILLS = ['code', 'linux-commands', 'python-automation', 'troubleshooting'] as const;
export type DemoSkill = (typeof DEMO_SKILLS)[number];

export const DEMO_MODEL_NAME = 'loraforge/demo-llama';

/** Rank and alpha per skill: different ranks so the adapter pool's zero-padding is exercised. */
const ADAPTERS: Record<DemoSkill, { rank: number; alpha: number }> = {
  code: { rank: 8, alpha: 16 },
  'linux-commands': { rank: 16, alpha: 16 },
  'python-automation': { rank: 4, alpha: 8 },
  troubleshooting: { rank: 8, alpha: 8 },
};

const DIMS = { hidden: 128, intermediate: 256, layers: 4, heads: 4, kvHeads: 2, maxPositions: 2048 };
const BLOCK = 32;
const ADAPTER_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const;

export interface DemoModel {
  /** the HF checkpoint: `<dir>/base` */
  checkpointDir: string;
  /** PEFT adapter dirs: `<dir>/adapters/<skill>` */
  adapterDirs: Record<DemoSkill, string>;
}

/**
 * Random [rows, cols] weights that 4-bit block quantization (blocks of 32 along cols) represents exactly: each
 * block is 2^-e times integers in [-7, 7] with one ±8, std ≈ `std`.
 */
function gridWeights(rng: SeededRandom, rows: number, cols: number, std: number): Float32Array {
  const w = new Float32Array(rows * cols);
  // integers ~ N(0, 2.5) clipped to ±7, so the scale is std / 2.5 rounded to a power of two (exact in bf16)
  const scale = 2 ** Math.round(Math.log2(std / 2.5));
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < cols; b += BLOCK) {
      const end = Math.min(b + BLOCK, cols);
      for (let c = b; c < end; c++) w[r * cols + c] = Math.max(-7, Math.min(7, Math.round(rng.normal() * 2.5))) * scale;
      w[r * cols + b + rng.int(end - b)] = (rng.uniform() < 0.5 ? -8 : 8) * scale;
    }
  }
  return w;
}

function demoConfig(vocabSize: number, bos: number, eos: number[]): Record<string, unknown> {
  return {
    _name_or_path: DEMO_MODEL_NAME,
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: DIMS.hidden,
    intermediate_size: DIMS.intermediate,
    num_hidden_layers: DIMS.layers,
    num_attention_heads: DIMS.heads,
    num_key_value_heads: DIMS.kvHeads,
    head_dim: DIMS.hidden / DIMS.heads,
    vocab_size: vocabSize,
    max_position_embeddings: DIMS.maxPositions,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    bos_token_id: bos,
    eos_token_id: eos,
    use_cache: true,
    transformers_version: '4.46.0',
  };
}

function demoAdapter(rng: SeededRandom, skill: DemoSkill): LoraAdapter {
  const { rank, alpha } = ADAPTERS[skill];
  const d = DIMS.hidden;
  const kv = DIMS.kvHeads * (d / DIMS.heads);
  const out: Record<(typeof ADAPTER_TARGETS)[number], number> = { q_proj: d, k_proj: kv, v_proj: kv, o_proj: d };
  const modules = new Map<string, LoraModule>();
  for (let l = 0; l < DIMS.layers; l++) {
    for (const target of ADAPTER_TARGETS) {
      const name = `model.layers.${l}.self_attn.${target}`;
      modules.set(name, {
        name,
        kind: 'linear',
        rank,
        alpha,
        scaling: alpha / rank,
        inFeatures: d,
        outFeatures: out[target],
        // PEFT's init draws A (kaiming-uniform) and zeros B; a trained B is what makes an adapter do something
        A: rng.normals(rank * d, 1 / Math.sqrt(d)),
        B: rng.normals(out[target] * rank, 0.5 / Math.sqrt(rank * (alpha / rank))),
      });
    }
  }
  return {
    config: plainAdapterConfig({ baseModel: DEMO_MODEL_NAME, r: rank, loraAlpha: alpha, targetModules: [...ADAPTER_TARGETS] }),
    modules,
    savedModules: new Map(),
    dtype: 'BF16',
    warnings: [],
  };
}

export interface RandomCheckpointOptions {
  seed: number;
  /** a factor per lm_head row (token id) */
  headRowScale?: (id: number) => number;
  /** weights larger than this go to separate shards with an index (default 5 GB, as transformers) */
  maxShardBytes?: number;
}

/**
 * Writes random bf16 weights for a Llama-architecture `config` (an HF config.json object) into `dir`, one tensor at a
 * time, so benchmark checkpoints of real sizes (e.g. Llama-3.2-1B shapes) need no more memory than one tensor.
 * Linear and embedding weights lie on the 4-bit grid (see above); norms are near 1. Writes config.json too.
 */
export async function writeRandomCheckpoint(dir: string, config: Record<string, unknown>, options: RandomCheckpointOptions): Promise<void> {
  const num = (key: string) => config[key] as number;
  const d = num('hidden_size');
  const im = num('intermediate_size');
  const heads = num('num_attention_heads');
  const kvHeads = (config.num_key_value_heads as number | undefined) ?? heads;
  const hd = (config.head_dim as number | undefined) ?? d / heads;
  const vocab = num('vocab_size');
  const rng = new SeededRandom(options.seed);
  const tensors: { name: string; shape: number[]; make: () => Float32Array }[] = [];
  const linear = (name: string, rows: number, cols: number) =>
    tensors.push({ name, shape: [rows, cols], make: () => gridWeights(rng, rows, cols, 1 / Math.sqrt(cols)) });
  const norm = (name: string) => tensors.push({ name, shape: [d], make: () => rng.normals(d, 0.05).map((x) => 1 + x) });
  tensors.push({ name: 'model.embed_tokens.weight', shape: [vocab, d], make: () => gridWeights(rng, vocab, d, 1) });
  for (let l = 0; l < num('num_hidden_layers'); l++) {
    const p = `model.layers.${l}`;
    norm(`${p}.input_layernorm.weight`);
    linear(`${p}.self_attn.q_proj.weight`, heads * hd, d);
    linear(`${p}.self_attn.k_proj.weight`, kvHeads * hd, d);
    linear(`${p}.self_attn.v_proj.weight`, kvHeads * hd, d);
    linear(`${p}.self_attn.o_proj.weight`, d, heads * hd);
    norm(`${p}.post_attention_layernorm.weight`);
    linear(`${p}.mlp.gate_proj.weight`, im, d);
    linear(`${p}.mlp.up_proj.weight`, im, d);
    linear(`${p}.mlp.down_proj.weight`, d, im);
  }
  norm('model.norm.weight');
  if (config.tie_word_embeddings !== true) {
    // a wider head than 1/√d makes the next-token distribution less flat
    tensors.push({
      name: 'lm_head.weight',
      shape: [vocab, d],
      make: () => {
        const w = gridWeights(rng, vocab, d, 4 / Math.sqrt(d));
        for (let id = 0; id < vocab; id++) {
          const f = options.headRowScale?.(id) ?? 1;
          if (f !== 1) for (let c = 0; c < d; c++) w[id * d + c] = w[id * d + c]! * f;
        }
        return w;
      },
    });
  }
  const writer = await ShardedCheckpointWriter.create(
    dir,
    tensors.map(({ name, shape }) => ({ name, dtype: 'BF16' as const, shape })),
    { maxShardBytes: options.maxShardBytes },
  );
  try {
    for (const t of tensors) await writer.write(t.name, t.make());
    await writer.finish();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  await writeFile(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** Writes the demo checkpoint and its four adapters into `dir` (which must not exist yet), atomically. */
export async function makeDemoModel(dir: string, options: { seed?: number } = {}): Promise<DemoModel> {
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidInputError(`seed must be a non-negative integer, not ${seed}`);
  const target = path.resolve(dir);
  const tokenizer = makeDemoTokenizer(256);
  const vocab = tokenizer.vocabSize;
  const eos = [tokenizer.eotTokenId, tokenizer.eosTokenId];

  await writeDirAtomic(target, async (tmp) => {
    const base = path.join(tmp, 'base');
    // shrink the head rows of byte tokens that are not printable ASCII (by a power of two: still on the grid),
    // so the nonsense comes out as words rather than broken bytes
    await writeRandomCheckpoint(base, demoConfig(vocab, tokenizer.bosTokenId, eos), {
      seed,
      headRowScale: (id) => (id < 256 && !tokenizer.printableByteIds.has(id) ? 1 / 16 : 1),
    });
    const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
    await writeFile(path.join(base, 'generation_config.json'), json({ bos_token_id: tokenizer.bosTokenId, eos_token_id: eos, do_sample: false }));
    await writeFile(path.join(base, 'tokenizer.json'), JSON.stringify(tokenizer.tokenizerJson));
    await writeFile(path.join(base, 'tokenizer_config.json'), json(tokenizer.tokenizerConfig));
    await writeFile(
      path.join(base, 'README.md'),
      `# ${DEMO_MODEL_NAME}\n\nA loraforge demo checkpoint (seed ${seed}). Its weights are random: its text is nonsense.\n` +
        'It exists to exercise the whole pipeline (build, serve, merge, compare) in seconds.\n',
    );

    for (const [i, skill] of DEMO_SKILLS.entries()) {
      const adapter = demoAdapter(new SeededRandom(seed * 7919 + 101 * (i + 1)), skill);
      await writeAdapter(path.join(tmp, 'adapters', skill), adapter, { dtype: 'BF16' });
    }
  });
  return {
    checkpointDir: path.join(target, 'base'),
    adapterDirs: Object.fromEntries(DEMO_SKILLS.map((s) => [s, path.join(target, 'adapters', s)])) as Record<DemoSkill, string>,
  };
}
