#!/usr/bin/env bash
# The conv nets' training steps, two builds of lottery and PyTorch alternating round by round, so
# that this machine's drift falls on all three alike. Usage:
#   bench/conv_rounds.sh OLD_LOTTERY NEW_LOTTERY [MODEL…]   (models: conv2 resnet20 vgg16)
# ROUNDS (default 3) rounds per model; prints one line per round and build (ms per step, dense and
# masked) and, per model, the medians and the ratios BENCHMARKS.md records. Needs bench/.venv with
# torch (bench/train_step.sh creates it).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
shift 2
models=("$@")
if [ ${#models[@]} -eq 0 ]; then models=(conv2 resnet20 vgg16); fi
rounds=${ROUNDS:-3}
python=bench/.venv/bin/python
flags() {
  case $1 in
    conv2) echo --model conv2 --optimizer adam --lr 2e-4 --warmup-steps 5 --steps 30 ;;
    resnet20) echo --model resnet20 --optimizer sgd --lr 0.1 --momentum 0.9 --batch-size 128 --warmup-steps 5 --steps 20 ;;
    vgg16) echo --model vgg16 --optimizer sgd --lr 0.1 --momentum 0.9 --batch-size 128 --warmup-steps 2 --steps 5 ;;
    *) echo "no such model: $1 (conv2, resnet20, vgg16)" >&2; exit 2 ;;
  esac
}
for model in "${models[@]}"; do
  read -ra f <<<"$(flags "$model")"
  results=()
  for r in $(seq "$rounds"); do
    for side in old new torch; do
      case $side in
        old) out=$("$old" bench train "${f[@]}" --json) ;;
        new) out=$("$new" bench train "${f[@]}" --json) ;;
        torch) out=$("$python" bench/torch_train_step.py "${f[@]}") ;;
      esac
      echo "$model round $r $side $out"
      results+=("$side $out")
    done
  done
  printf '%s\n' "${results[@]}" | python3 <(cat <<'PY'
import json, statistics, sys
model, rows = sys.argv[1], {}
for line in sys.stdin:
    side, js = line.split(" ", 1)
    rows.setdefault(side, []).append(json.loads(js))
med = {s: [statistics.median(r[k] for r in rs) for k in ("ms_per_step", "ms_per_step_masked")]
       for s, rs in rows.items()}
(od, om), (nd, nm), (td, tm) = med["old"], med["new"], med["torch"]
print(f"{model} medians, dense (masked) ms: old {od:.1f} ({om:.1f}), new {nd:.1f} ({nm:.1f}), "
      f"torch {td:.1f} ({tm:.1f}); new/torch {nd / td:.2f}x ({nm / tm:.2f}x), old/new {od / nd:.2f}x")
PY
) "$model"
done
