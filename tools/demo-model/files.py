# Writers for what the demo model is made of: safetensors (header JSON + raw little-endian data, as the safetensors
# library lays it out), the HF checkpoint's JSON files, a byte-level tokenizer.json in Llama-3's shape (the same
# structure as src/inference/demo-tokenizer.ts, with no merges: one token per byte) and PEFT's adapter_config.json.
import hashlib
import json
import os
import struct

import torch

MODEL_NAME = 'loraforge/demo-llama'

SPECIALS = ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>']
BOS, EOS, START_HEADER, END_HEADER, EOT = range(256, 261)
VOCAB_SIZE = 261

# Llama-3's pre-tokenizer regex as its tokenizer.json writes it (Rust regex syntax)
LLAMA3_SPLIT = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")

# the template of src/inference/demo-tokenizer.ts (Llama-3's, trimmed of tool calling)
CHAT_TEMPLATE = (
    "{{- bos_token }}{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{%- if system_message %}{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system_message + '<|eot_id|>' }}{%- endif %}"
    "{%- for message in messages %}{%- if message['role'] not in ['user', 'assistant'] %}"
    "{{- raise_exception('roles must be system (first only), user or assistant, not ' + message['role']) }}{%- endif %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table that byte-level vocabularies are written in."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, n = {}, 0
    for b in printable:
        table[b] = chr(b)
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return [table[b] for b in range(256)]


def encode_text(text):
    return list(text.encode('utf-8'))


def encode_chat(prompt, answer):
    """Token ids of one user turn and the assistant's answer, as the chat template renders them; and the index where
    the answer starts."""
    ids = [BOS, START_HEADER] + encode_text('user') + [END_HEADER] + encode_text('\n\n' + prompt.strip()) + [EOT]
    ids += [START_HEADER] + encode_text('assistant') + [END_HEADER] + encode_text('\n\n')
    start = len(ids)
    return ids + encode_text(answer.strip()) + [EOT], start


def write_json(path, value):
    with open(path, 'w') as f:
        f.write(json.dumps(value, indent=2) + '\n')


def write_safetensors(path, tensors, dtype=torch.float16):
    """tensors: {name: tensor}; written sorted by name, each converted to `dtype`, offsets contiguous."""
    tag = {torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float32: 'F32'}[dtype]
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(dtype).contiguous()
        data = t.view(torch.int16 if dtype != torch.float32 else torch.int32).numpy().tobytes()
        header[name] = {'dtype': tag, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header['__metadata__'] = {'format': 'pt'}
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        a, b = info['data_offsets']
        dt = {'F16': torch.float16, 'BF16': torch.bfloat16, 'F32': torch.float32}[info['dtype']]
        raw = torch.frombuffer(bytearray(data[a:b]), dtype=torch.int16 if dt != torch.float32 else torch.int32)
        out[name] = raw.view(dt).reshape(info['shape']).float()
    return out


def tokenizer_json():
    byte_char = bytes_to_unicode()
    added = [{'id': 256 + i, 'content': c, 'single_word': False, 'lstrip': False, 'rstrip': False, 'normalized': False, 'special': True}
             for i, c in enumerate(SPECIALS)]
    bos = SPECIALS[0]
    return {
        'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added, 'normalizer': None,
        'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
            {'type': 'Split', 'pattern': {'Regex': LLAMA3_SPLIT}, 'behavior': 'Isolated', 'invert': False},
            {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False}]},
        'post_processor': {'type': 'TemplateProcessing',
                           'single': [{'SpecialToken': {'id': bos, 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
                           'pair': [{'SpecialToken': {'id': bos, 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                                    {'SpecialToken': {'id': bos, 'type_id': 1}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
                           'special_tokens': {bos: {'id': bos, 'ids': [BOS], 'tokens': [bos]}}},
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': True},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None, 'end_of_word_suffix': None,
                  'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
                  'vocab': {ch: i for i, ch in enumerate(byte_char)}, 'merges': []},
    }


def write_checkpoint_files(out, config):
    write_json(os.path.join(out, 'config.json'), config)
    write_json(os.path.join(out, 'generation_config.json'), {'bos_token_id': BOS, 'eos_token_id': [EOT, EOS], 'do_sample': False})
    with open(os.path.join(out, 'tokenizer.json'), 'w') as f:
        f.write(json.dumps(tokenizer_json(), ensure_ascii=False))
    write_json(os.path.join(out, 'tokenizer_config.json'), {
        'bos_token': SPECIALS[0], 'eos_token': SPECIALS[4], 'pad_token': SPECIALS[1], 'clean_up_tokenization_spaces': False,
        'model_max_length': config['max_position_embeddings'], 'tokenizer_class': 'PreTrainedTokenizerFast', 'chat_template': CHAT_TEMPLATE})


def adapter_config(r, alpha, targets):
    """adapter_config.json as PEFT 0.13 writes it for a LoRA on a LlamaForCausalLM."""
    return {
        'alpha_pattern': {}, 'auto_mapping': None, 'base_model_name_or_path': MODEL_NAME, 'bias': 'none',
        'fan_in_fan_out': False, 'inference_mode': True, 'init_lora_weights': True, 'layer_replication': None,
        'layers_pattern': None, 'layers_to_transform': None, 'loftq_config': {}, 'lora_alpha': alpha, 'lora_dropout': 0.0,
        'megatron_config': None, 'megatron_core': 'megatron.core', 'modules_to_save': None, 'peft_type': 'LORA', 'r': r,
        'rank_pattern': {}, 'revision': None, 'target_modules': sorted(targets), 'task_type': 'CAUSAL_LM',
        'use_dora': False, 'use_rslora': False,
    }


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
