#!/usr/bin/env bash
# Compact sparse inference beside the dense network in burn and in PyTorch, same machine, same
# run, repeated for $ROUNDS rounds (this machine's speed drifts); prints the median of each cell
# as a Markdown table. Creates bench/.venv with torch and safetensors from PyPI on first use.
# Usage: bench/infer.sh MODEL.lsm [EXPORTED.safetensors]
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1
weights=${2:-}
if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c "import torch, safetensors" 2>/dev/null; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet torch numpy safetensors
fi
cargo build --release --quiet
rounds=${ROUNDS:-3}
results=()
for _ in $(seq "$rounds"); do
  results+=("$(target/release/lottery bench infer "$model" --torch bench/.venv/bin/python \
    ${weights:+--torch-weights "$weights"} --json 2>/dev/null)")
done
printf '%s\n' "${results[@]}" | python3 bench/summarise_infer.py
