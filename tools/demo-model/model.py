# A Llama forward in plain torch, with the math of transformers' LlamaForCausalLM (RMSNorm in fp32, rotate-half RoPE,
# grouped-query attention, SiLU-gated MLP, untied head), and a PEFT-style LoRA wrapper (y = Wx + (alpha/r)·B(A(x)),
# A kaiming-uniform, B zero). Parameter names are the HF checkpoint's, so state_dict() is what model.safetensors holds.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class LoraLinear(nn.Module):
    """PEFT's lora.Linear: the frozen base layer plus a scaled low-rank update (no dropout: the demo data is clean)."""

    def __init__(self, base: nn.Linear, r: int, alpha: int):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.kv_heads, self.hd = c['num_attention_heads'], c['num_key_value_heads'], c['head_dim']
        d = c['hidden_size']
        self.q_proj = nn.Linear(d, self.heads * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(self.heads * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.hd) + mask
        probs = F.softmax(scores.float(), dim=-1).to(q.dtype)
        out = torch.matmul(probs, v)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.heads * self.hd))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, im = c['hidden_size'], c['intermediate_size']
        self.gate_proj = nn.Linear(d, im, bias=False)
        self.up_proj = nn.Linear(d, im, bias=False)
        self.down_proj = nn.Linear(im, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.post_attention_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.layers = nn.ModuleList(Layer(c) for _ in range(c['num_hidden_layers']))
        self.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])


class LlamaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.config = c
        self.model = Body(c)
        self.lm_head = nn.Linear(c['hidden_size'], c['vocab_size'], bias=False)
        hd = c['head_dim']
        self.register_buffer('inv_freq', 1.0 / (c['rope_theta'] ** (torch.arange(0, hd, 2).float() / hd)), persistent=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids, pad_mask=None):
        b, t = ids.shape
        freqs = torch.arange(t, dtype=torch.float32)[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((t, t), float('-inf')).triu(1)[None, None]
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


def add_lora(model, targets, r, alpha):
    """Wraps the target projections of every layer; freezes everything else. Returns {peft module name: LoraLinear}."""
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = {}
    for i, layer in enumerate(model.model.layers):
        for t in targets:
            parent = layer.self_attn if t in ('q_proj', 'k_proj', 'v_proj', 'o_proj') else layer.mlp
            lora = LoraLinear(getattr(parent, t), r, alpha)
            setattr(parent, t, lora)
            part = 'self_attn' if parent is layer.self_attn else 'mlp'
            wrapped[f'model.layers.{i}.{part}.{t}'] = lora
    return wrapped
