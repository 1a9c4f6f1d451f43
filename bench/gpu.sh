#!/usr/bin/env bash
# Training steps on an NVIDIA GPU: lottery on `--device wgpu` (Vulkan) beside PyTorch on CUDA, same
# machine, same run — Conv-2 (Adam, batch 60) and ResNet-20 (SGD + momentum, batch 60), dense and
# masked (80% of weights pruned), alternating ours and PyTorch for $ROUNDS rounds (median of the
# rounds' medians). Then a correctness check: LeNet-300-100 trained 300 steps on the bundled MNIST
# on wgpu and on the CPU from the same init and data order.
#
# Usage: LOTTERY=path/to/lottery PYTHON=python3 bench/gpu.sh
#   LOTTERY  a lottery built with `--features wgpu` (default: builds target/release/lottery)
#   PYTHON   a Python whose torch sees the GPU (default: python3)
#   STEPS    timed steps per case (default 50), ROUNDS (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
lottery=${LOTTERY:-target/release/lottery}
python=${PYTHON:-python3}
steps=${STEPS:-50}
rounds=${ROUNDS:-3}
if [ -z "${LOTTERY:-}" ]; then
  cargo build --release -p lottery-cli --features wgpu --quiet
fi

echo "## machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi: not found"
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "sees", torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
echo "## Vulkan drivers (ICD manifests)"
for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d ${VK_DRIVER_FILES:+$(dirname "$VK_DRIVER_FILES")}; do
  [ -d "$d" ] && ls "$d" | sed "s#^#$d/#"
done
ldconfig -p | grep -q libvulkan.so.1 && echo "libvulkan.so.1: present" || echo "libvulkan.so.1: MISSING (install libvulkan1)"

echo "## steps (ms; median of $rounds rounds of $steps steps)"
printf '%-10s %10s %12s %10s %12s %14s\n' model ours ours-masked torch torch-masked "masked ours/torch"
case_() {
  local model=$1; shift
  local ours=() torch=()
  for _ in $(seq "$rounds"); do
    ours+=("$("$lottery" bench train --model "$model" --device wgpu "$@" --steps "$steps" --warmup-steps 10 --json)")
    torch+=("$("$python" bench/torch_train_step.py --model "$model" --device cuda "$@" --steps "$steps" --warmup-steps 10)")
  done
  "$python" - "$model" "${ours[*]}" "${torch[*]}" <<'PY'
import json, statistics, sys
name = sys.argv[1]
parse = lambda s: [json.loads(x) for x in s.replace("} {", "}\n{").splitlines()]
o, t = parse(sys.argv[2]), parse(sys.argv[3])
med = lambda rs, k: statistics.median(r[k] for r in rs)
om, omm, tm, tmm = med(o, "ms_per_step"), med(o, "ms_per_step_masked"), med(t, "ms_per_step"), med(t, "ms_per_step_masked")
print(f"{name:<10} {om:10.2f} {omm:12.2f} {tm:10.2f} {tmm:12.2f} {omm / tmm:13.2f}x")
PY
}
case_ conv2 --optimizer adam --lr 2e-4
case_ resnet20 --optimizer sgd --lr 0.1 --momentum 0.9

echo "## LeNet-300-100, 300 steps, same init and data order: wgpu vs cpu"
tmp=$(mktemp -d)
for dev in wgpu cpu; do
  start=$(date +%s.%N)
  "$lottery" train --device "$dev" --iterations 300 --eval-every 300 --out "$tmp/$dev" > "$tmp/$dev.log"
  end=$(date +%s.%N)
  "$python" -c "import json; s=json.load(open('$tmp/$dev/summary.json')); print('$dev: test accuracy', s['test_accuracy'], 'in', round($end - $start, 1), 's wall')"
done
# A 90%-pruned mask trained on the GPU: every pruned weight must come back exactly 0.0.
"$lottery" prune "$tmp/cpu/weights.safetensors" --sparsity 0.9 --out "$tmp/p" > /dev/null
"$lottery" train --device wgpu --iterations 300 --eval-every 300 --mask "$tmp/p/mask.safetensors" --out "$tmp/masked" > /dev/null
"$python" - "$tmp" <<'PY'
import json, sys
from safetensors.numpy import load_file
tmp = sys.argv[1]
w, m = load_file(f"{tmp}/masked/weights.safetensors"), load_file(f"{tmp}/p/mask.safetensors")
bad = sum(int(((m[k] == 0) & (w[k] != 0)).sum()) for k in m)
pruned = sum(int((m[k] == 0).sum()) for k in m)
acc = json.load(open(f"{tmp}/masked/summary.json"))["test_accuracy"]
print(f"masked on wgpu: {pruned} pruned weights, {bad} not exactly 0.0; test accuracy {acc}")
PY
rm -rf "$tmp"
