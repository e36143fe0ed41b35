// Generated PEFT LoRA adapters for tests and benchmarks: a Llama-style stack of attention projections with
// seeded random factors, written as adapter_config.json + adapter_model.safetensors.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { plainAdapterConfig } from '../../src/formats/peft-config.js';
import { writeSafetensors, type TensorToWrite } from '../../src/formats/safetensors.js';

/** The config of a plain causal-LM LoRA, `fields` on top (the product's own `plainAdapterConfig`). */
export const adapterConfig = plainAdapterConfig;

export interface AdapterShape {
  hidden: number;
  kv: number;
  layers: number;
  rank: number;
  alpha?: number;
  targets?: Array<'q' | 'k' | 'v' | 'o'>;
  baseModel?: string;
  dtype?: 'F32' | 'F16' | 'BF16';
}

/** A small deterministic PRNG (mulberry32) so every run writes the same bytes for the same seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function writeTestAdapter(dir: string, shape: AdapterShape, seed: number): Promise<string> {
  const random = rng(seed);
  const targets = shape.targets ?? ['q', 'k', 'v', 'o'];
  const tensors: TensorToWrite[] = [];
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
  for (let layer = 0; layer < shape.layers; layer++) {
    for (const t of targets) {
      const out = t === 'k' || t === 'v' ? shape.kv : shape.hidden;
      const module = `base_model.model.model.layers.${layer}.self_attn.${t}_proj`;
      tensors.push({ name: `${module}.lora_A.weight`, dtype: shape.dtype ?? 'F32', shape: [shape.rank, shape.hidden], data: fill(shape.rank * shape.hidden, 0.05) });
      tensors.push({ name: `${module}.lora_B.weight`, dtype: shape.dtype ?? 'F32', shape: [out, shape.rank], data: fill(out * shape.rank, 0.05) });
    }
  }
  await mkdir(dir, { recursive: true });
  await writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors);
  const config = {
    base_model_name_or_path: shape.baseModel ?? 'test/llama-tiny',
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: shape.rank,
    lora_alpha: shape.alpha ?? shape.rank * 2,
    lora_dropout: 0,
    target_modules: targets.map((t) => `${t}_proj`),
    bias: 'none',
    use_rslora: false,
    fan_in_fan_out: false,
  };
  await writeFile(path.join(dir, 'adapter_config.json'), JSON.stringify(config, null, 2));
  return dir;
}
