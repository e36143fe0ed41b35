#!/bin/sh
# Rebuilds assets/demo and config/suites from scratch: the eval suites, the base, then the four adapters two at a time
# (each process on one thread: Debian's torch runs one-thread oneDNN kernels best on a busy 2-core machine).
# Usage: tools/demo-model/build.sh [seed]   (run from the repository root; logs in assets/demo/build-*.log are not kept)
set -eu
trap "rm -f assets/demo/.manifest.lock" EXIT
seed=${1:-0}
out=assets/demo
py=/usr/bin/python3
train="$py -u tools/demo-model/train.py"
rm -rf "$out" && mkdir -p "$out"
$train suites --seed "$seed"
$train base --seed "$seed" --base-steps 900 > /tmp/demo-base.log 2>&1
for pair in "code linux-commands" "python-automation troubleshooting"; do
  pids=""
  for skill in $pair; do
    $train adapter --skill "$skill" --seed "$seed" --adapter-steps 220 > "/tmp/demo-$skill.log" 2>&1 &
    pids="$pids $!"
  done
  for p in $pids; do wait "$p"; done
done
