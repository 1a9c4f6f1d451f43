#!/usr/bin/env bash
# The Python package with PyTorch: its torch tests (ExactMask through 1,000 steps of SGD with
# momentum + weight decay, Nesterov, AdamW and AMSGrad; imp), then
# examples/python/prune_my_model.py (train an MLP on MNIST in PyTorch, prune 90%, fine-tune
# with ExactMask, compact, save, reload, compare with the masked torch model, time batch 1).
# Creates bench/.venv with torch from PyPI on first use and installs ./python into it.
# Usage: bench/python_example.sh [example flags, e.g. --scope layerwise --json]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bench/.venv/bin/python ] || ! bench/.venv/bin/python -c "import torch, safetensors" 2>/dev/null; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet torch numpy safetensors
fi
bench/.venv/bin/pip install --quiet pytest maturin
bench/.venv/bin/pip install --quiet ./python
(cd python && ../bench/.venv/bin/python -m pytest -q tests/test_torch.py)
bench/.venv/bin/python examples/python/prune_my_model.py "$@"
