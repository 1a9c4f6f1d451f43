#!/usr/bin/env bash
# Training-step speed, lottery (burn, CPU) beside PyTorch, same machine, same run.
# Creates bench/.venv with torch and numpy from PyPI on first use. Usage: bench/train_step.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-300}
if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c "import torch" 2>/dev/null; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet torch numpy
fi
cargo build --release --quiet
lottery=target/release/lottery
printf '%-34s %12s %12s %12s %12s %8s\n' "case" "ours ms" "ours masked" "torch ms" "torch masked" "ratio"
run() {
  local name=$1 steps=$2; shift 2
  local ours torch
  ours=$($lottery bench train "$@" --steps "$steps" --json)
  torch=$(bench/.venv/bin/python bench/torch_train_step.py "$@" --steps "$steps")
  python3 - "$name" "$ours" "$torch" <<'PY'
import json, sys
name, o, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
ratio = o["ms_per_step_masked"] / t["ms_per_step_masked"]
print(f'{name:<34} {o["ms_per_step"]:12.3f} {o["ms_per_step_masked"]:12.3f} {t["ms_per_step"]:12.3f} {t["ms_per_step_masked"]:12.3f} {ratio:7.2f}x')
PY
}
run "lenet_300_100 adam b60" "$steps" --model lenet_300_100 --optimizer adam --lr 1.2e-3
run "lenet_300_100 sgd-nesterov b60" "$steps" --model lenet_300_100 --optimizer sgd --lr 0.1 --momentum 0.9 --nesterov
run "conv2 adam b60 3x32x32" $((steps / 10)) --model conv2 --optimizer adam --lr 2e-4
