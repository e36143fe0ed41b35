# Trains the demo model: `base` (a Llama-architecture checkpoint on the general mix), `adapter --skill S` (a PEFT
# LoRA on one skill, over the saved fp16 base) or `all`; `suites` writes the eval suites; `bench` measures tokens/s.
# Writes into --out (assets/demo) and records each part's command, seed, steps and wall time in manifest.json.
# Deterministic for a given seed and thread count: data order and init come from seeded generators, ops run on CPU.
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

import corpus
import files
from model import LlamaForCausalLM, add_lora

CONFIG = {
    '_name_or_path': files.MODEL_NAME, 'architectures': ['LlamaForCausalLM'], 'model_type': 'llama',
    'hidden_size': 192, 'intermediate_size': 512, 'num_hidden_layers': 4, 'num_attention_heads': 3,
    'num_key_value_heads': 1, 'head_dim': 64, 'vocab_size': files.VOCAB_SIZE, 'max_position_embeddings': 512,
    'rms_norm_eps': 1e-5, 'rope_theta': 10000.0, 'rope_scaling': None, 'hidden_act': 'silu', 'attention_bias': False,
    'mlp_bias': False, 'tie_word_embeddings': False, 'torch_dtype': 'float16', 'bos_token_id': files.BOS,
    'eos_token_id': [files.EOT, files.EOS], 'use_cache': True, 'transformers_version': '4.46.0',
}
LORA = {'r': 16, 'alpha': 32}
EVAL_PER_SKILL = 40
TRAIN_PER_SKILL = 6000


def log(msg):
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', flush=True)


def batches(examples, batch, rng):
    """Endless shuffled batches of (ids, loss mask) padded to the longest in the batch; examples of similar length are
    batched together (sorted within windows of 32 batches) so little compute goes to padding."""
    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        groups = []
        for w in range(0, len(order), 32 * batch):
            window = sorted(order[w:w + 32 * batch], key=lambda j: len(examples[j][0]))
            groups += [window[i:i + batch] for i in range(0, len(window) - batch + 1, batch)]
        rng.shuffle(groups)
        for group in groups:
            chunk = [examples[j] for j in group]
            t = max(len(ids) for ids, _ in chunk)
            ids = torch.full((batch, t), files.EOS, dtype=torch.long)
            mask = torch.zeros((batch, t), dtype=torch.bool)
            for r, (x, start) in enumerate(chunk):
                ids[r, :len(x)] = torch.tensor(x)
                mask[r, start:len(x)] = True
            yield ids, mask


def loss_of(model, ids, mask):
    logits = model(ids[:, :-1])
    target = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)


def train_loop(model, params, examples, steps, batch, lr, seed, label):
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    rng = random.Random(f'{seed}:{label}:order')
    warm = max(1, steps // 20)
    it = batches(examples, batch, rng)
    t0, avg = time.time(), None
    for step in range(steps):
        f = (step + 1) / warm if step < warm else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
        for g in opt.param_groups:
            g['lr'] = lr * f
        ids, mask = next(it)
        loss = loss_of(model, ids, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            log(f'{label} step {step}/{steps} loss {avg:.3f} ({time.time() - t0:.0f} s)')


@torch.no_grad()
def greedy(model, prompt, max_new=100):
    ids, _ = files.encode_chat(prompt, '')
    ids = ids[:-1]  # drop the empty answer's EOT
    out = []
    for _ in range(max_new):
        nxt = int(model(torch.tensor([ids]))[0, -1].argmax())
        if nxt in (files.EOT, files.EOS):
            break
        ids.append(nxt)
        out.append(nxt)
    return bytes(b for b in out if b < 256).decode('utf-8', 'replace')


def passes(answer, checks):
    import re
    return all((re.search(c['regex'], answer) is not None) if isinstance(c, dict) else (c in answer) for c in checks)


def quick_eval(model, seed, skills, n=10):
    model.eval()
    for s in skills:
        items, _ = corpus.split_items(s, seed, EVAL_PER_SKILL, 0)
        ok = sum(passes(greedy(model, p), c) for p, _, c in items[:n])
        log(f'  {s}: {ok}/{n} pass; e.g. {items[0][0]!r} -> {greedy(model, items[0][0])!r}')
    model.train()


def base_examples(seed, n_chat, n_text):
    chat, text = corpus.general_items(seed, n_chat, n_text)
    out = [files.encode_chat(p, a) for p, a in chat]
    for i, (ids, start) in enumerate(out):
        out[i] = (ids, 1)  # the base learns the whole turn, prompts included
    out += [([files.BOS] + files.encode_text(t) + [files.EOS], 1) for t in text]
    return out


def record(out, part, paths, info):
    """Adds `paths` (relative to out) to manifest.json with sha256, size and how they were made."""
    import fcntl
    mpath = os.path.join(out, 'manifest.json')
    with open(os.path.join(out, '.manifest.lock'), 'w') as lock:  # adapters train two at a time (build.sh removes it)
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = json.load(open(mpath)) if os.path.exists(mpath) else {'model': files.MODEL_NAME, 'files': {}, 'parts': {}}
        manifest['parts'][part] = info
        manifest['parts'] = dict(sorted(manifest['parts'].items()))
        for p in paths:
            manifest['files'][p] = {'sha256': files.sha256(os.path.join(out, p)), 'bytes': os.path.getsize(os.path.join(out, p)), 'part': part}
        manifest['files'] = dict(sorted(manifest['files'].items()))
        files.write_json(mpath, manifest)


def threads(args):
    """Thread counts as recorded: torch's own (--threads) and OpenBLAS's, which torch's setting does not limit."""
    return {'threads': args.threads, 'blas_threads': int(os.environ.get('OPENBLAS_NUM_THREADS', os.cpu_count()))}


def command_line():
    return 'python3 tools/demo-model/train.py ' + ' '.join(sys.argv[1:])


def train_base(args):
    torch.manual_seed(args.seed)
    t0 = time.time()
    model = LlamaForCausalLM(CONFIG)
    n = sum(p.numel() for p in model.parameters())
    log(f'base: {n} parameters')
    examples = base_examples(args.seed, args.base_chat, args.base_text)
    train_loop(model, list(model.parameters()), examples, args.base_steps, args.batch, args.base_lr, args.seed, 'base')
    if args.quick_eval:
        quick_eval(model, args.seed, corpus.SKILLS, min(args.quick_eval, 3))
    d = os.path.join(args.out, 'base')
    os.makedirs(d, exist_ok=True)
    files.write_safetensors(os.path.join(d, 'model.safetensors'), model.state_dict())
    files.write_checkpoint_files(d, CONFIG)
    names = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
    record(args.out, 'base', [f'base/{x}' for x in names], {
        'command': command_line(), 'seed': args.seed, **threads(args), 'parameters': n, 'steps': args.base_steps,
        'batch': args.batch, 'lr': args.base_lr, 'examples': len(examples), 'wall_seconds': round(time.time() - t0, 1)})


def load_base(out):
    model = LlamaForCausalLM(CONFIG)
    state = files.read_safetensors(os.path.join(out, 'base', 'model.safetensors'))
    model.load_state_dict(state)
    return model


def train_adapter(args, skill):
    torch.manual_seed(args.seed * 1000 + corpus.SKILLS.index(skill) + 1)
    t0 = time.time()
    model = load_base(args.out)
    targets = args.targets.split(',')
    wrapped = add_lora(model, targets, LORA['r'], LORA['alpha'])
    params = [p for m in wrapped.values() for p in (m.lora_A.weight, m.lora_B.weight)]
    _, train = corpus.split_items(skill, args.seed, EVAL_PER_SKILL, TRAIN_PER_SKILL)
    examples = [files.encode_chat(p, a) for p, a in train]
    train_loop(model, params, examples, args.adapter_steps, args.batch, args.adapter_lr, args.seed, skill)
    if args.quick_eval:
        quick_eval(model, args.seed, [skill], args.quick_eval)
    d = os.path.join(args.out, 'adapters', skill)
    os.makedirs(d, exist_ok=True)
    tensors = {}
    for name, m in wrapped.items():
        tensors[f'base_model.model.{name}.lora_A.weight'] = m.lora_A.weight
        tensors[f'base_model.model.{name}.lora_B.weight'] = m.lora_B.weight
    files.write_safetensors(os.path.join(d, 'adapter_model.safetensors'), tensors)
    files.write_json(os.path.join(d, 'adapter_config.json'), files.adapter_config(LORA['r'], LORA['alpha'], targets))
    record(args.out, f'adapters/{skill}', [f'adapters/{skill}/adapter_config.json', f'adapters/{skill}/adapter_model.safetensors'], {
        'command': command_line(), 'seed': args.seed, **threads(args), 'skill': skill, 'steps': args.adapter_steps,
        'batch': args.batch, 'lr': args.adapter_lr, 'examples': len(examples), 'r': LORA['r'], 'alpha': LORA['alpha'], 'targets': targets, 'wall_seconds': round(time.time() - t0, 1)})


def write_suites(args):
    """config/suites/<skill>.jsonl: the eval items (prompts never seen in training) with their checks."""
    os.makedirs(args.suites, exist_ok=True)
    for skill in corpus.SKILLS:
        items, _ = corpus.split_items(skill, args.seed, EVAL_PER_SKILL, 0)
        with open(os.path.join(args.suites, f'{skill}.jsonl'), 'w') as f:
            for i, (p, a, checks) in enumerate(items):
                f.write(json.dumps({'id': f'{skill}-{i + 1}', 'category': skill, 'prompt': p, 'reference': a, 'checks': checks}) + '\n')


def bench(args):
    torch.manual_seed(0)
    model = LlamaForCausalLM(CONFIG)
    examples = base_examples(0, 2000, 500)
    it = batches(examples, args.batch, random.Random(0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens, t0 = 0, None
    for step in range(8):
        if step == 2:
            t0, tokens = time.time(), 0
        ids, mask = next(it)
        loss = loss_of(model, ids, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tokens += ids.numel()
    log(f'{sum(p.numel() for p in model.parameters())} params, {tokens / (time.time() - t0):.0f} tokens/s (padded), batch {args.batch}, mean len {sum(len(x) for x, _ in examples) / len(examples):.0f}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('what', choices=['base', 'adapter', 'all', 'suites', 'bench'])
    ap.add_argument('--skill', choices=corpus.SKILLS)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default='assets/demo')
    ap.add_argument('--suites', default='config/suites')
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--base-steps', type=int, default=1500)
    ap.add_argument('--base-lr', type=float, default=3e-3)
    ap.add_argument('--base-chat', type=int, default=30000)
    ap.add_argument('--base-text', type=int, default=8000)
    ap.add_argument('--adapter-steps', type=int, default=640)
    ap.add_argument('--quick-eval', type=int, default=8, help='greedy answers to this many suite prompts after training (a log line)')
    ap.add_argument('--adapter-lr', type=float, default=5e-3)
    ap.add_argument('--targets', default='q_proj,k_proj,v_proj,o_proj', help='the projections each adapter wraps (PEFT names)')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    if args.what == 'bench':
        return bench(args)
    if args.what == 'suites':
        return write_suites(args)
    if args.what in ('base', 'all'):
        train_base(args)
    skills = corpus.SKILLS if args.what == 'all' else [args.skill] if args.skill else []
    if args.what == 'adapter' and not skills:
        ap.error('adapter needs --skill')
    for s in skills:
        train_adapter(args, s)


if __name__ == '__main__':
    main()
