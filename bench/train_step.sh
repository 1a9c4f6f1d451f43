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
printf '%-34s %12s %12s %12s %12s %8s\n' "case" "ours ms" "ours masked" "torch ms" "torch masked" "masked ours/torch"
# This machine's speed drifts by tens of percent over minutes, so each case alternates
# ours/PyTorch for $rounds rounds and reports the median of the rounds' medians.
rounds=${ROUNDS:-3}
run() {
  local name=$1 steps=$2; shift 2
  local ours=() torch=()
  for _ in $(seq "$rounds"); do
    ours+=("$($lottery bench train "$@" --steps "$steps" --json)")
    torch+=("$(bench/.venv/bin/python bench/torch_train_step.py "$@" --steps "$steps")")
  done
  python3 - "$name" "${ours[*]}" "${torch[*]}" <<'PY'
import json, statistics, sys
name = sys.argv[1]
parse = lambda s: [json.loads(x) for x in s.replace("} {", "}\n{").splitlines()]
o, t = parse(sys.argv[2]), parse(sys.argv[3])
med = lambda rs, k: statistics.median(r[k] for r in rs)
om, omm, tm, tmm = med(o, "ms_per_step"), med(o, "ms_per_step_masked"), med(t, "ms_per_step"), med(t, "ms_per_step_masked")
print(f"{name:<34} {om:12.3f} {omm:12.3f} {tm:12.3f} {tmm:12.3f} {omm / tmm:7.2f}x")
PY
}
run "lenet_300_100 adam b60" "$steps" --model lenet_300_100 --optimizer adam --lr 1.2e-3
run "lenet_300_100 sgd-nesterov b60" "$steps" --model lenet_300_100 --optimizer sgd --lr 0.1 --momentum 0.9 --nesterov
run "conv2 adam b60 3x32x32" $((steps / 10)) --model conv2 --optimizer adam --lr 2e-4
run "resnet20 sgd b128 3x32x32" $((steps / 30)) --model resnet20 --optimizer sgd --lr 0.1 --momentum 0.9 --batch-size 128 --warmup-steps 2
run "vgg16 sgd b128 3x32x32" $((steps / 60)) --model vgg16 --optimizer sgd --lr 0.1 --momentum 0.9 --batch-size 128 --warmup-steps 2
