# numpy reference for bench/merge.ts: PEFT's add_weighted_adapter(combination_type="ties") in factors space, rule
# for rule (peft.utils.merge_utils.ties: magnitude top-k per tensor, sign of the sum, disjoint mean), on A and B
# separately with c_i = w_i·s_i split as sign(c)·sqrt|c| on A and sqrt|c| on B. Loads the adapters, merges every
# module and writes the result as safetensors, timing all of it in process.
# usage: python3 bench/peft-ties-reference.py <density> <out file> <weights comma-separated> <adapter dir>...
# prints one JSON line: {"seconds": ..., "loadSeconds": ..., "mergeSeconds": ..., "writeSeconds": ...}
import json
import struct
import sys
import time

import numpy as np


def load(directory):
    with open(f"{directory}/adapter_model.safetensors", "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8 : 8 + n])
    tensors = {}
    for key, v in header.items():
        if key == "__metadata__":
            continue
        assert v["dtype"] == "F32", "the reference reads F32 adapters only"
        b, e = v["data_offsets"]
        tensors[key] = np.frombuffer(buf, dtype=np.float32, count=(e - b) // 4, offset=8 + n + b).reshape(v["shape"])
    with open(f"{directory}/adapter_config.json") as f:
        config = json.load(f)
    return tensors, config["lora_alpha"] / config["r"]


def prune(t, density):
    flat = np.abs(t).ravel()
    k = int(density * flat.size)
    mask = np.zeros(flat.size, dtype=bool)
    mask[np.argpartition(flat, flat.size - k)[flat.size - k :]] = True
    return t * mask.reshape(t.shape)


def ties(tensors, weights, density):
    stacked = np.stack([prune(t, density) for t in tensors])
    majority = np.where(stacked.sum(axis=0) >= 0, 1.0, -1.0).astype(np.float32)
    agree = np.sign(stacked) == majority
    mixed = (stacked * weights.reshape(-1, *[1] * (stacked.ndim - 1)) * agree).sum(axis=0)
    return (mixed / np.maximum(agree.sum(axis=0), 1)).astype(np.float32)


def main():
    density = float(sys.argv[1])
    out_file = sys.argv[2]
    weights = [float(w) for w in sys.argv[3].split(",")]
    dirs = sys.argv[4:]
    t0 = time.perf_counter()
    adapters = [load(d) for d in dirs]
    t1 = time.perf_counter()
    c = [w * s for w, (_, s) in zip(weights, adapters)]
    a_weights = np.array([np.sign(x) * np.sqrt(abs(x)) for x in c], dtype=np.float32)
    b_weights = np.array([np.sqrt(abs(x)) for x in c], dtype=np.float32)
    merged = {}
    for key in adapters[0][0]:
        w = a_weights if ".lora_A." in key else b_weights
        merged[key] = ties([t[key] for t, _ in adapters], w, density)
    t2 = time.perf_counter()
    header, offset = {}, 0
    for key in sorted(merged):
        size = merged[key].nbytes
        header[key] = {"dtype": "F32", "shape": list(merged[key].shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(out_file, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for key in sorted(merged):
            f.write(merged[key].tobytes())
    t3 = time.perf_counter()
    print(json.dumps({"seconds": t3 - t0, "loadSeconds": t1 - t0, "mergeSeconds": t2 - t1, "writeSeconds": t3 - t2}))


main()
