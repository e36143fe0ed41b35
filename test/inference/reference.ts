// A reference forward pass of every supported decoder in plain TypeScript: float64, naive loops, the whole sequence
// at once, no cache. Written from the transformers modeling code (modeling_llama, _mistral, _qwen2, _qwen3, _phi3,
// _gemma2, _gemma3, _gpt2), separately from the builder (it reads the raw config.json and the raw HF tensors itself
// and shares no code with src/), so the builder's graph is checked against an independent account.

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
function linear(x: Float64Array, w: Float32Array, outDim: number, bias?: Float32Array, lora?: Lora): Float64Array {
  const inDim = x.length;
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let acc = bias ? bias[o]! : 0;
    for (let i = 0; i < inDim; i++) acc += x[i]! * w[o * inDim + i]!;
    y[o] = acc;
  }
  if (lora) addLora(y, x, lora);
  return y;
}

/** y += scaling·(x·Aᵀ)·Bᵀ: PEFT's LoRA on the layer's output. */
function addLora(y: Float64Array, x: Float64Array, lora: Lora): void {
  const inDim = x.length;
  const xa = new Float64Array(lora.rank);
  for (let r = 0; r < lora.rank; r++) {
    let acc = 0;
    for (let i = 0; i < inDim; i++) acc += x[i]! * lora.A[r * inDim + i]!;
    xa[r] = acc;
  }
  for (let o = 0; o < y.length; o++) {
    let acc = 0;
    for (let r = 0; r < lora.rank; r++) acc += xa[r]! * lora.B[o * lora.rank + r]!;
    y[o] = y[o]! + lora.scaling * acc;
  }
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

type Lora = { A: Float32Array; B: Float32Array; rank: number; scaling: number };

/** torch's `tensor(x, dtype=...)` of a scalar: float32 rounding, then bf16 (round to nearest even on the top 16 bits). */
function roundToDtype(x: number, dtype: unknown): number {
  const f = new Float32Array([x]);
  if (dtype === 'bfloat16') {
    const u = new Uint32Array(f.buffer);
    u[0] = ((u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) >>> 16) << 16;
  } else if (dtype === 'float16') {
    const e = Math.floor(Math.log2(x));
    return Math.round(x / 2 ** (e - 10)) * 2 ** (e - 10);
  }
  return f[0]!;
}

function layerNorm(x: Float64Array, w: Float32Array, b: Float32Array, eps: number): Float64Array {
  const mean = x.reduce((a, v) => a + v, 0) / x.length;
  const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
  const inv = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * inv * w[i]! + b[i]!);
}

/** x·W + b (+ scaling·(x·Aᵀ)·Bᵀ) for GPT-2's Conv1D, W stored [in, out]; PEFT's LoRA factors are as for nn.Linear. */
function conv1d(x: Float64Array, w: Float32Array, outDim: number, bias: Float32Array, lora?: Lora): Float64Array {
  const y = Float64Array.from(bias);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!;
    for (let o = 0; o < outDim; o++) y[o] = y[o]! + xi * w[i * outDim + o]!;
  }
  if (lora) addLora(y, x, lora);
  return y;
}

const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const silu = (x: number) => x / (1 + Math.exp(-x));

/** softmax-weighted sum of values over the visible keys of one head; scores already scaled (and capped). */
function attend(scores: number[], values: Float64Array[], visible: number[], offset: number, hd: number, out: Float64Array, outOffset: number): void {
  const max = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - max));
  const z = e.reduce((a, b) => a + b, 0);
  for (let i = 0; i < hd; i++) {
    let acc = 0;
    visible.forEach((u, j) => (acc += e[j]! * values[u]![offset + i]!));
    out[outOffset + i] = acc / z;
  }
}

/** GPT2LMHeadModel: learned positions, LayerNorm with bias, Conv1D, gelu_new, tied head. */
function gpt2Logits(cfg: RawConfig, get: (name: string) => Float32Array, tokens: readonly number[], lora?: ReferenceLora): Float64Array[] {
  const D = cfgNum(cfg, 'n_embd');
  const H = cfgNum(cfg, 'n_head');
  const L = cfgNum(cfg, 'n_layer');
  const V = cfgNum(cfg, 'vocab_size');
  const I = typeof cfg.n_inner === 'number' ? cfg.n_inner : 4 * D;
  const eps = cfgNum(cfg, 'layer_norm_epsilon', 1e-5);
  const hd = D / H;
  const wte = get('transformer.wte.weight');
  const wpe = get('transformer.wpe.weight');
  let h = tokens.map((t, p) => Float64Array.from({ length: D }, (_, i) => wte[t * D + i]! + wpe[p * D + i]!));
  for (let l = 0; l < L; l++) {
    const pre = `transformer.h.${l}`;
    const conv = (module: string, x: Float64Array, out: number) => conv1d(x, get(`${pre}.${module}.weight`), out, get(`${pre}.${module}.bias`), lora?.get(`${pre}.${module}`));
    const ln = (name: string, x: Float64Array) => layerNorm(x, get(`${pre}.${name}.weight`), get(`${pre}.${name}.bias`), eps);
    const qkv = h.map((r) => conv('attn.c_attn', ln('ln_1', r), 3 * D));
    const attn = tokens.map(() => new Float64Array(D));
    for (let t = 0; t < tokens.length; t++) {
      for (let n = 0; n < H; n++) {
        const visible = Array.from({ length: t + 1 }, (_, u) => u);
        const scores = visible.map((u) => {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += qkv[t]![n * hd + i]! * qkv[u]![D + n * hd + i]!;
          return dot / Math.sqrt(hd);
        });
        attend(scores, qkv, visible, 2 * D + n * hd, hd, attn[t]!, n * hd);
      }
    }
    h = h.map((r, t) => {
      const a = conv('attn.c_proj', attn[t]!, D);
      const r2 = r.map((v, i) => v + a[i]!);
      const m = conv('mlp.c_proj', conv('mlp.c_fc', ln('ln_2', r2), I).map(geluTanh), D);
      return r2.map((v, i) => v + m[i]!);
    });
  }
  return h.map((r) => linear(layerNorm(r, get('transformer.ln_f.weight'), get('transformer.ln_f.bias'), eps), wte, V));
}

/**
 * Logits at every position of `tokens` (positions 0..n-1). `lora` applies one adapter to the modules it names
 * (PEFT module paths; on Phi-3's fused qkv_proj / gate_up_proj the delta adds to the fused output, then it splits).
 * `taps.values`, when given, receives each layer's value rows (v_proj output per position; not for GPT-2).
 */
export function referenceLogits(
  cfg: RawConfig,
  tensor: TensorLookup,
  tokens: readonly number[],
  lora?: ReferenceLora,
  taps?: { values: Float64Array[][] },
): Float64Array[] {
  // GPT-2 files often store names without the `transformer.` prefix the module tree (and PEFT) has
  const find = (name: string) => tensor(name) ?? (name.startsWith('transformer.') ? tensor(name.slice('transformer.'.length)) : undefined);
  const get = (name: string): Float32Array => {
    const t = find(name);
    if (!t) throw new Error(`reference: tensor ${name} missing`);
    return t;
  };
  if (cfg.model_type === 'gpt2') return gpt2Logits(cfg, get, tokens, lora);
  const type = cfg.model_type as string;
  const gemma = type === 'gemma2' || type === 'gemma3_text';
  const D = cfgNum(cfg, 'hidden_size');
  const H = cfgNum(cfg, 'num_attention_heads');
  const KVH = cfgNum(cfg, 'num_key_value_heads', H);
  const hd = typeof cfg.head_dim === 'number' ? cfg.head_dim : D / H;
  const I = cfgNum(cfg, 'intermediate_size');
  const V = cfgNum(cfg, 'vocab_size');
  const L = cfgNum(cfg, 'num_hidden_layers');
  const eps = cfgNum(cfg, 'rms_norm_eps', 1e-6);
  // Gemma's RMSNorm: x · (1 + w)
  const norm = (x: Float64Array, w: Float32Array) => (gemma ? rmsNorm(x, w.map((v) => 1 + v), eps) : rmsNorm(x, w, eps));
  const sliding = (l: number): boolean => {
    if (typeof cfg.sliding_window !== 'number') return false;
    if (Array.isArray(cfg.layer_types) && gemma) return cfg.layer_types[l] === 'sliding_attention';
    if (type === 'gemma2') return l % 2 === 0;
    if (type === 'gemma3_text') return (l + 1) % cfgNum(cfg, 'sliding_window_pattern', 6) !== 0;
    return type === 'mistral' || type === 'phi3';
  };
  const scale = gemma ? cfgNum(cfg, 'query_pre_attn_scalar') ** -0.5 : 1 / Math.sqrt(hd);
  const softcap = typeof cfg.attn_logit_softcapping === 'number' ? cfg.attn_logit_softcapping : null;
  const finalCap = typeof cfg.final_logit_softcapping === 'number' ? cfg.final_logit_softcapping : null;
  const globalInv = invFreq(cfg, hd);
  // Gemma 3's sliding layers: default rope at rope_local_base_freq
  const localInv = type === 'gemma3_text' ? invFreq({ rope_theta: cfgNum(cfg, 'rope_local_base_freq') }, hd) : globalInv;
  const T = tokens.length;
  const embed = get('model.embed_tokens.weight');
  const lm = tensor('lm_head.weight') ?? embed;
  const normalizer = gemma ? roundToDtype(Math.sqrt(D), cfg.torch_dtype) : 1;

  let h = tokens.map((t) => Float64Array.from(embed.subarray(t * D, (t + 1) * D)).map((v) => v * normalizer));
  for (let l = 0; l < L; l++) {
    const pre = `model.layers.${l}`;
    const lin = (module: string, x: Float64Array, out: number): Float64Array =>
      linear(x, get(`${pre}.${module}.weight`), out, tensor(`${pre}.${module}.bias`), lora?.get(`${pre}.${module}`));
    const xs = h.map((v) => norm(v, get(`${pre}.input_layernorm.weight`)));
    let q: Float64Array[];
    let k: Float64Array[];
    let v: Float64Array[];
    if (type === 'phi3') {
      const qkv = xs.map((x) => lin('self_attn.qkv_proj', x, (H + 2 * KVH) * hd));
      q = qkv.map((r) => r.slice(0, H * hd));
      k = qkv.map((r) => r.slice(H * hd, (H + KVH) * hd));
      v = qkv.map((r) => r.slice((H + KVH) * hd));
    } else {
      q = xs.map((x) => lin('self_attn.q_proj', x, H * hd));
      k = xs.map((x) => lin('self_attn.k_proj', x, KVH * hd));
      v = xs.map((x) => lin('self_attn.v_proj', x, KVH * hd));
    }
    taps?.values.push(v);
    if (type === 'qwen3' || type === 'gemma3_text') {
      const headNorm = (rows: Float64Array[], heads: number, w: Float32Array) =>
        rows.map((r) => {
          const outRow = new Float64Array(r.length);
          for (let n = 0; n < heads; n++) outRow.set(norm(r.slice(n * hd, (n + 1) * hd), w), n * hd);
          return outRow;
        });
      q = headNorm(q, H, get(`${pre}.self_attn.q_norm.weight`));
      k = headNorm(k, KVH, get(`${pre}.self_attn.k_norm.weight`));
    }
    const inv = sliding(l) ? localInv : globalInv;
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < H; n++) rope(q[t]!, n * hd, hd, inv, t);
      for (let n = 0; n < KVH; n++) rope(k[t]!, n * hd, hd, inv, t);
    }
    const window = sliding(l) ? (cfg.sliding_window as number) : Infinity;
    const attn = q.map(() => new Float64Array(H * hd));
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < H; n++) {
        const kv = Math.floor(n / (H / KVH));
        const visible: number[] = [];
        for (let u = 0; u <= t; u++) if (t - u < window) visible.push(u);
        const scores = visible.map((u) => {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[t]![n * hd + i]! * k[u]![kv * hd + i]!;
          const s = dot * scale;
          return softcap === null ? s : softcap * Math.tanh(s / softcap);
        });
        attend(scores, v, visible, kv * hd, hd, attn[t]!, n * hd);
      }
    }
    h = h.map((r, t) => {
      let o = lin('self_attn.o_proj', attn[t]!, D);
      if (gemma) o = norm(o, get(`${pre}.post_attention_layernorm.weight`));
      return r.map((val, i) => val + o[i]!);
    });
    h = h.map((r) => {
      const x = norm(r, get(`${pre}.${gemma ? 'pre_feedforward_layernorm' : 'post_attention_layernorm'}.weight`));
      let g: Float64Array;
      let u: Float64Array;
      if (type === 'phi3') {
        const gu = lin('mlp.gate_up_proj', x, 2 * I);
        [g, u] = [gu.slice(0, I), gu.slice(I)];
      } else {
        [g, u] = [lin('mlp.gate_proj', x, I), lin('mlp.up_proj', x, I)];
      }
      const act = gemma ? geluTanh : silu;
      let dn = lin('mlp.down_proj', g.map((gv, i) => act(gv) * u[i]!), D);
      if (gemma) dn = norm(dn, get(`${pre}.post_feedforward_layernorm.weight`));
      return r.map((val, i) => val + dn[i]!);
    });
  }
  return h.map((r) => {
    const logits = linear(norm(r, get('model.norm.weight')), lm, V);
    return finalCap === null ? logits : logits.map((z) => finalCap * Math.tanh(z / finalCap));
  });
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
