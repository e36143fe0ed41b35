#!/bin/sh
# Rebuilds assets/demo and config/suites from scratch: the eval suites, the base (OpenBLAS on both cores), then the
# four adapters at once (one process each, one OpenBLAS thread each: on 2 cores that beats one at a time on two).
# Needs Debian's python3-torch with libopenblas0-pthread (README.md). Usage: tools/demo-model/build.sh [seed]
# (from the repository root; logs in /tmp/demo-*.log)
set -eu
seed=${1:-0}
out=assets/demo
train="/usr/bin/python3 -u tools/demo-model/train.py"
trap 'rm -f "$out/.manifest.lock"' EXIT
rm -rf "$out" && mkdir -p "$out"
$train suites --seed "$seed"
OPENBLAS_NUM_THREADS=2 $train base --seed "$seed" --batch 32 --base-steps 2500 --base-chat 70000 --base-text 8000 > /tmp/demo-base.log 2>&1
pids=""
for skill in code linux-commands python-automation troubleshooting; do
  OPENBLAS_NUM_THREADS=1 $train adapter --skill "$skill" --seed "$seed" --adapter-steps 1200 --batch 32 --adapter-lr 3e-3 \
    --targets q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --quick-eval 40 > "/tmp/demo-$skill.log" 2>&1 &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done
