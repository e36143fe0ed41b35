// A reference forward pass of the Llama / Mistral / Qwen2 decoder in plain TypeScript: float64, naive loops, the whole
// sequence at once, no cache. Written from the transformers modeling code, separately from the builder (it reads the
// raw config.json and the raw HF tensors itself), so the builder's graph is checked against an independent account.

export type RawConfig = Record<string, unknown>;

/** An HF tensor by name, row-major as stored ([out, in] for linear weights). */
export type TensorLookup = (name: string) => Float32Array | undefined;

/** One LoRA adapter: per module path, A [r, in], B [out, r] and the scaling (PEFT's layout). */
export type ReferenceLora = Map<string, { A: Float32Array; B: Float32Array; rank: number; scaling: number }>;

function cfgNum(cfg: RawConfig, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number') throw new Error(`reference: config.${key} missing`);
  return v;
}

function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * w[i]!);
}

/** x·Wᵀ (+ b) (+ scaling·(x·Aᵀ)·Bᵀ) for one token. */
function linear(x: Float64Array, w: Float32Array, outDim: number, bias?: Float32Array, lora?: { A: Float32Array; B: Float32Array; rank: number; scaling: number }): Float64Array {
  const inDim = x.length;
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let acc = bias ? bias[o]! : 0;
    for (let i = 0; i < inDim; i++) acc += x[i]! * w[o * inDim + i]!;
    y[o] = acc;
  }
  if (lora) {
    const xa = new Float64Array(lora.rank);
    for (let r = 0; r < lora.rank; r++) {
      let acc = 0;
      for (let i = 0; i < inDim; i++) acc += x[i]! * lora.A[r * inDim + i]!;
      xa[r] = acc;
    }
    for (let o = 0; o < outDim; o++) {
      let acc = 0;
      for (let r = 0; r < lora.rank; r++) acc += xa[r]! * lora.B[o * lora.rank + r]!;
      y[o] = y[o]! + lora.scaling * acc;
    }
  }
  return y;
}

/** transformers' rope inverse frequencies, in float64: default, linear and llama3 rope_scaling. */
function invFreq(cfg: RawConfig, headDim: number): Float64Array {
  const theta = cfgNum(cfg, 'rope_theta', 10000);
  const inv = new Float64Array(headDim / 2).map((_, i) => 1 / theta ** ((2 * i) / headDim));
  const scaling = cfg.rope_scaling as Record<string, number | string> | null | undefined;
  const kind = scaling ? (scaling.rope_type ?? scaling.type) : null;
  if (kind === 'linear') return inv.map((f) => f / (scaling!.factor as number));
  if (kind === 'llama3') {
    const factor = scaling!.factor as number;
    const low = scaling!.low_freq_factor as number;
    const high = scaling!.high_freq_factor as number;
    const old = scaling!.original_max_position_embeddings as number;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < old / high) return f;
      if (wavelen > old / low) return f / factor;
      const smooth = (old / wavelen - low) / (high - low);
      return (1 - smooth) * (f / factor) + smooth * f;
    });
  }
  return inv;
}

/** rotate_half RoPE of one head vector at position p. */
function rope(x: Float64Array, offset: number, headDim: number, inv: Float64Array, p: number): void {
  const half = headDim / 2;
  for (let i = 0; i < half; i++) {
    const c = Math.cos(p * inv[i]!);
    const s = Math.sin(p * inv[i]!);
    const a = x[offset + i]!;
    const b = x[offset + i + half]!;
    x[offset + i] = a * c - b * s;
    x[offset + i + half] = b * c + a * s;
  }
}

/**
 * Logits at every position of `tokens` (positions 0..n-1). `lora` applies one adapter to the modules it names.
 * `taps.values`, when given, receives each layer's value rows (v_proj output per position).
 */
export function referenceLogits(
  cfg: RawConfig,
  tensor: TensorLookup,
  tokens: readonly number[],
  lora?: ReferenceLora,
  taps?: { values: Float64Array[][] },
): Float64Array[] {
  const get = (name: string): Float32Array => {
    const t = tensor(name);
    if (!t) throw new Error(`reference: tensor ${name} missing`);
    return t;
  };
  const D = cfgNum(cfg, 'hidden_size');
  const H = cfgNum(cfg, 'num_attention_heads');
  const KVH = cfgNum(cfg, 'num_key_value_heads', H);
  const hd = typeof cfg.head_dim === 'number' ? cfg.head_dim : D / H;
  const I = cfgNum(cfg, 'intermediate_size');
  const V = cfgNum(cfg, 'vocab_size');
  const L = cfgNum(cfg, 'num_hidden_layers');
  const eps = cfgNum(cfg, 'rms_norm_eps', 1e-6);
  const window = cfg.model_type === 'mistral' && typeof cfg.sliding_window === 'number' ? cfg.sliding_window : Infinity;
  const inv = invFreq(cfg, hd);
  const T = tokens.length;
  const embed = get('model.embed_tokens.weight');
  const lm = tensor('lm_head.weight') ?? embed;

  let h = tokens.map((t) => Float64Array.from(embed.subarray(t * D, (t + 1) * D)));
  for (let l = 0; l < L; l++) {
    const pre = `model.layers.${l}`;
    const lin = (module: string, x: Float64Array, out: number): Float64Array =>
      linear(x, get(`${pre}.${module}.weight`), out, tensor(`${pre}.${module}.bias`), lora?.get(`${pre}.${module}`));
    const xs = h.map((v) => rmsNorm(v, get(`${pre}.input_layernorm.weight`), eps));
    const q = xs.map((x) => lin('self_attn.q_proj', x, H * hd));
    const k = xs.map((x) => lin('self_attn.k_proj', x, KVH * hd));
    const v = xs.map((x) => lin('self_attn.v_proj', x, KVH * hd));
    taps?.values.push(v);
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < H; n++) rope(q[t]!, n * hd, hd, inv, t);
      for (let n = 0; n < KVH; n++) rope(k[t]!, n * hd, hd, inv, t);
    }
    const attn = q.map(() => new Float64Array(H * hd));
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < H; n++) {
        const kv = Math.floor(n / (H / KVH));
        const visible: number[] = [];
        for (let u = 0; u <= t; u++) if (t - u < window) visible.push(u);
        const scores = visible.map((u) => {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[t]![n * hd + i]! * k[u]![kv * hd + i]!;
          return dot / Math.sqrt(hd);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < hd; i++) {
          let acc = 0;
          visible.forEach((u, j) => (acc += e[j]! * v[u]![kv * hd + i]!));
          attn[t]![n * hd + i] = acc / z;
        }
      }
    }
    h = h.map((r, t) => {
      const o = lin('self_attn.o_proj', attn[t]!, D);
      return r.map((val, i) => val + o[i]!);
    });
    h = h.map((r) => {
      const x = rmsNorm(r, get(`${pre}.post_attention_layernorm.weight`), eps);
      const g = lin('mlp.gate_proj', x, I);
      const u = lin('mlp.up_proj', x, I);
      const a = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!);
      const dn = lin('mlp.down_proj', a, D);
      return r.map((val, i) => val + dn[i]!);
    });
  }
  return h.map((r) => linear(rmsNorm(r, get('model.norm.weight'), eps), lm, V));
}

/** max |a - b| / max |b|: the error relative to the size of the reference values. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
