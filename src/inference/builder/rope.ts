// Rotary position embedding caches, [positions, head_dim/2] cos and sin, with rope scaling baked in. Computed as
// transformers computes them (inverse frequencies and angles rounded to float32), because that is what the model
// saw in training: at position 100k a float64 angle differs from the float32 one by more than the rounding of cos.
import type { ModelConfig } from './config.js';

/** transformers' inverse frequencies, `_compute_default/linear/llama3_rope_parameters`. */
export function inverseFrequencies(config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const { headDim, ropeTheta, ropeScaling } = config;
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(ropeTheta, Math.fround((2 * i) / headDim));
  if (ropeScaling?.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] = inv[i]! / ropeScaling.factor;
  } else if (ropeScaling?.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldLen } = ropeScaling;
    const lowFreqWavelen = oldLen / lowFreqFactor;
    const highFreqWavelen = oldLen / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const f = inv[i]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowFreqWavelen) inv[i] = f / factor;
      else if (wavelen >= highFreqWavelen) {
        const smooth = (oldLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = (1 - smooth) * (f / factor) + smooth * f;
      }
    }
  }
  return inv;
}

export function ropeCaches(
  config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>,
  positions: number,
): { cos: Float32Array; sin: Float32Array } {
  const inv = inverseFrequencies(config);
  const half = inv.length;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inv[i]!);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
