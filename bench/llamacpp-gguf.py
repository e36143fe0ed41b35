#!/usr/bin/env python3
# The F16 GGUF of an HF checkpoint for bench:vs-llamacpp, with llama.cpp's own convert_hf_to_gguf.py on a machine
# without `transformers` or a recent torch (Debian's python3 with torch 1.13, numpy, python3-sentencepiece,
# python3-tqdm). Then: llama-quantize --pure F16.gguf Q4_0.gguf Q4_0. What it works around, and why the weights are
# those of the checkpoint:
# - the converter imports transformers.AutoConfig at module level but reads config.json when AutoConfig fails: a
#   stand-in module whose AutoConfig always fails;
# - torch 1.13 lacks torch.float8_e4m3fn / float8_e5m2, which the converter names in its dtype tables: placeholders
#   (the checkpoint is bf16, no float8 tensor is read);
# - the bench checkpoint's tokenizer (a byte-level BPE padded to 128256 ids) goes to the converter's BPE path,
#   which needs transformers.AutoTokenizer and a known pre-tokenizer hash: the converter is given a copy of the
#   checkpoint dir (symlinked weights and config.json, no tokenizer.json) with a small SentencePiece tokenizer.model
#   trained here; the converter pads its vocabulary to the config's vocab_size with [PAD] tokens, so the GGUF has
#   the checkpoint's 128256-row embedding and head. Token strings do not change speed;
# - Debian has no python3-safetensors: a stand-in module reads the checkpoint's tensors (header, then bytes).
# Usage: python3 bench/llamacpp-gguf.py LLAMA_CPP_DIR CHECKPOINT_DIR WORK_DIR [converter args, e.g. --vocab-only]
import os
import sys
import types
from pathlib import Path

llama_dir, checkpoint, work = (Path(a).resolve() for a in sys.argv[1:4])
extra = sys.argv[4:]
src = work / "src"
src.mkdir(parents=True, exist_ok=True)
for f in checkpoint.iterdir():
    if not f.name.startswith("tokenizer") and not (src / f.name).exists():
        (src / f.name).symlink_to(f)

if not (src / "tokenizer.model").exists():
    import sentencepiece as spm

    corpus = work / "spm-corpus.txt"
    corpus.write_text("".join(p.read_text(errors="ignore") for p in sorted((llama_dir / "docs").glob("*.md"))))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(work / "spm"), vocab_size=2000, model_type="bpe", byte_fallback=True, minloglevel=2)
    (work / "spm.model").rename(src / "tokenizer.model")

transformers = types.ModuleType("transformers")


class AutoConfig:
    @staticmethod
    def from_pretrained(*args, **kwargs):
        raise RuntimeError("transformers is not installed (stand-in); reading config.json")


transformers.AutoConfig = AutoConfig
sys.modules["transformers"] = transformers

import torch  # noqa: E402

for name in ("float8_e4m3fn", "float8_e5m2"):
    if not hasattr(torch, name):
        setattr(torch, name, f"<no torch.{name}>")

try:
    import safetensors  # noqa: F401
except ImportError:
    # Debian has no python3-safetensors: a stand-in with the reads the converter makes (keys, get_slice, get_tensor)
    import json
    import struct

    _DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}

    class _Slice:
        def __init__(self, path, info, base):
            self.path, self.info, self.base = path, info, base

        def get_dtype(self):
            return self.info["dtype"]

        def get_shape(self):
            return self.info["shape"]

        def tensor(self):
            begin, end = self.info["data_offsets"]
            with open(self.path, "rb") as f:
                f.seek(self.base + begin)
                raw = bytearray(f.read(end - begin))
            return torch.frombuffer(raw, dtype=_DTYPES[self.info["dtype"]]).reshape(self.info["shape"])

        def __getitem__(self, index):
            return self.tensor()[index]

    class safe_open:  # noqa: N801 (the real module's name)
        def __init__(self, path, framework="pt", device="cpu"):
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
            header.pop("__metadata__", None)
            self.path, self.header, self.base = path, header, 8 + n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def keys(self):
            return list(self.header)

        def get_slice(self, name):
            return _Slice(self.path, self.header[name], self.base)

        def get_tensor(self, name):
            return self.get_slice(name).tensor()

    stand_in = types.ModuleType("safetensors")
    stand_in.safe_open = safe_open
    sys.modules["safetensors"] = stand_in

sys.path[:0] = [str(llama_dir), str(llama_dir / "gguf-py")]
os.chdir(llama_dir)
sys.argv = ["convert_hf_to_gguf.py", str(src), "--outtype", "f16", "--outfile", str(work / "F16.gguf"), *extra]
import runpy  # noqa: E402

runpy.run_path(str(llama_dir / "convert_hf_to_gguf.py"), run_name="__main__")
