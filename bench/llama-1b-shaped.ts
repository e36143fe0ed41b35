// A random-weight checkpoint with Llama-3.2-1B's shapes (hidden 2048, 16 layers, 32 heads, 8 KV heads, MLP 8192,
// vocab 128256, tied embeddings) and four random rank-16 q/k/v/o adapters, for the serving benchmark. Weights are
// written as bf16 (2.5 GB instead of 5 GB of fp32), one tensor at a time through the streaming shard writer, so
// the generator never holds more than one tensor; the builder then quantizes to int4 as for a real checkpoint.
// Its tokenizer is the demo byte-level BPE padded with filler tokens to the full vocabulary (the benchmark feeds
// token ids; decoding must still cover every id). BENCH_LAYERS=n writes an n-layer variant beside it (quicker to
// build; the per-layer figures scale, the head's share grows).
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ShardedCheckpointWriter } from '../src/formats/checkpoint-writer.js';
import { writeSafetensors } from '../src/formats/safetensors-writer.js';
import { makeDemoTokenizer } from '../src/inference/demo-tokenizer.js';

export const SHAPE = {
  hidden: 2048,
  layers: 16,
  heads: 32,
  kvHeads: 8,
  intermediate: 8192,
  vocab: 128256,
  headDim: 64,
  maxPositions: 4096,
};

/** Fills `out` with uniform values of standard deviation `std` (xorshift32: fast, deterministic). */
function fillRandom(out: Float32Array, seed: number, std: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const scale = (std * Math.sqrt(3) * 2) / 4294967296;
  const half = std * Math.sqrt(3);
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s * scale - half;
  }
  return out;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

export const ADAPTER_NAMES = ['bench-a', 'bench-b', 'bench-c', 'bench-d'];
export const ADAPTER_RANK = 16;

/** Writes the checkpoint and adapters under `dir` unless already there; returns the checkpoint and adapter dirs. */
export async function ensureBenchCheckpoint(fullDir: string, log: (line: string) => void): Promise<{ checkpoint: string; adapters: string[] }> {
  const layers = Number(process.env.BENCH_LAYERS ?? SHAPE.layers);
  if (!Number.isInteger(layers) || layers < 1) throw new Error(`BENCH_LAYERS must be a positive integer, not ${process.env.BENCH_LAYERS}`);
  const dir = layers === SHAPE.layers ? fullDir : `${fullDir}-L${layers}`;
  const checkpoint = path.join(dir, 'checkpoint');
  const adapters = ADAPTER_NAMES.map((n) => path.join(dir, 'adapters', n));
  const done = path.join(dir, '.complete');
  if (await exists(done)) return { checkpoint, adapters };
  await rm(dir, { recursive: true, force: true });
  await mkdir(checkpoint, { recursive: true });
  const { hidden: d, heads, kvHeads, intermediate: im, vocab, headDim } = SHAPE;
  const kvDim = kvHeads * headDim;

  const tok = makeDemoTokenizer();
  const json = tok.tokenizerJson as { model: { vocab: Record<string, number> }; added_tokens: Array<{ id: number }> };
  const used = new Set([...Object.values(json.model.vocab), ...json.added_tokens.map((t) => t.id)]);
  for (let id = 0; id < vocab; id++) if (!used.has(id)) json.model.vocab[`fill${id}`] = id;
  await writeFile(path.join(checkpoint, 'tokenizer.json'), JSON.stringify(json));
  await writeFile(path.join(checkpoint, 'tokenizer_config.json'), JSON.stringify(tok.tokenizerConfig));
  await writeFile(
    path.join(checkpoint, 'config.json'),
    JSON.stringify(
      {
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        _name_or_path: 'bench/llama-3.2-1b-shaped-random',
        hidden_size: d,
        intermediate_size: im,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: kvHeads,
        head_dim: headDim,
        vocab_size: vocab,
        max_position_embeddings: SHAPE.maxPositions,
        rms_norm_eps: 1e-5,
        rope_theta: 500000,
        rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
        tie_word_embeddings: true,
        hidden_act: 'silu',
        bos_token_id: tok.bosTokenId,
        eos_token_id: tok.eotTokenId,
        torch_dtype: 'bfloat16',
      },
      null,
      2,
    ),
  );

  const layout: Array<{ name: string; shape: number[] }> = [{ name: 'model.embed_tokens.weight', shape: [vocab, d] }];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    layout.push(
      { name: `${p}.input_layernorm.weight`, shape: [d] },
      { name: `${p}.self_attn.q_proj.weight`, shape: [heads * headDim, d] },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kvDim, d] },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kvDim, d] },
      { name: `${p}.self_attn.o_proj.weight`, shape: [d, heads * headDim] },
      { name: `${p}.post_attention_layernorm.weight`, shape: [d] },
      { name: `${p}.mlp.gate_proj.weight`, shape: [im, d] },
      { name: `${p}.mlp.up_proj.weight`, shape: [im, d] },
      { name: `${p}.mlp.down_proj.weight`, shape: [d, im] },
    );
  }
  layout.push({ name: 'model.norm.weight', shape: [d] });
  const writer = await ShardedCheckpointWriter.create(checkpoint, layout.map((t) => ({ ...t, dtype: 'BF16' as const })), {
    maxShardBytes: 1_000_000_000,
  });
  let seed = 1;
  for (const [i, t] of layout.entries()) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = t.name.endsWith('layernorm.weight') || t.name === 'model.norm.weight' ? new Float32Array(n).fill(1) : fillRandom(new Float32Array(n), seed++, 0.02);
    await writer.write(t.name, data);
    if (i % 20 === 0) log(`bench checkpoint: ${i + 1}/${layout.length} tensors`);
  }
  await writer.finish();

  // four adapters on q, k, v, o of every layer
  const dims: Record<string, [number, number]> = { q_proj: [d, heads * headDim], k_proj: [d, kvDim], v_proj: [d, kvDim], o_proj: [heads * headDim, d] };
  for (const [a, adapterDir] of adapters.entries()) {
    await mkdir(adapterDir, { recursive: true });
    const tensors = [];
    for (let l = 0; l < layers; l++) {
      for (const [proj, [inF, outF]] of Object.entries(dims)) {
        const base = `base_model.model.model.layers.${l}.self_attn.${proj}`;
        tensors.push({ name: `${base}.lora_A.weight`, dtype: 'F32' as const, shape: [ADAPTER_RANK, inF], data: fillRandom(new Float32Array(ADAPTER_RANK * inF), 1000 * (a + 1) + l * 8, 0.02) });
        tensors.push({ name: `${base}.lora_B.weight`, dtype: 'F32' as const, shape: [outF, ADAPTER_RANK], data: fillRandom(new Float32Array(outF * ADAPTER_RANK), 1000 * (a + 1) + l * 8 + 4, 0.02) });
      }
    }
    await writeSafetensors(path.join(adapterDir, 'adapter_model.safetensors'), tensors);
    await writeFile(
      path.join(adapterDir, 'adapter_config.json'),
      JSON.stringify({
        peft_type: 'LORA',
        task_type: 'CAUSAL_LM',
        base_model_name_or_path: 'bench/llama-3.2-1b-shaped-random',
        r: ADAPTER_RANK,
        lora_alpha: 32,
        lora_dropout: 0,
        target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
        fan_in_fan_out: false,
        bias: 'none',
        use_rslora: false,
        use_dora: false,
      }),
    );
  }
  await writeFile(done, new Date().toISOString());
  return { checkpoint, adapters };
}
