"""Prune a model you trained yourself, keep it pruned while fine-tuning, and deploy it small.

A PyTorch MLP (784-300-100-10) is trained on MNIST by an ordinary PyTorch loop; `lottery.prune`
removes 90% of its weights; `lottery.torch.ExactMask` keeps them at exactly 0.0 while the same
loop fine-tunes (SGD with momentum and weight decay); `lottery.compact` turns it into a
`SparseModel`, which is saved, reloaded, checked against the masked torch model on all 10,000
test images, and timed against the dense torch model at batch 1.

    python examples/python/prune_my_model.py [--data data/mnist] [--json]

Needs torch and the package (`pip install ./python`); bench/python_example.sh sets both up.
"""

import argparse
import gzip
import json
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import lottery
import lottery.torch


def mnist(folder: Path, split: str):
    def idx(name):
        raw = gzip.open(folder / name).read()
        dims = [struct.unpack(">I", raw[4 + 4 * i: 8 + 4 * i])[0] for i in range(raw[3])]
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)

    prefix = "train" if split == "train" else "t10k"
    x = idx(f"{prefix}-images-idx3-ubyte.gz").astype(np.float32)
    x = (x / np.float32(255.0) - np.float32(0.1307)) / np.float32(0.3081)
    return torch.from_numpy(x.reshape(-1, 1, 28, 28)), torch.from_numpy(idx(f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 300), nn.Linear(300, 100), nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def train(model, x, y, steps, optimizer, batch=60, seed=0):
    """The user's own loop: nothing in it knows about pruning."""
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        i = torch.randint(0, len(x), (batch,), generator=g)
        optimizer.zero_grad()
        F.cross_entropy(model(x[i]), y[i]).backward()
        optimizer.step()


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()


def per_call_us(fn, x, calls=2000):
    for _ in range(200):
        fn(x)
    times = []
    for _ in range(calls // 100):
        t = time.perf_counter()
        for _ in range(100):
            fn(x)
        times.append((time.perf_counter() - t) / 100)
    return float(np.median(times) * 1e6)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "data/mnist"))
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--finetune", type=int, default=1000)
    p.add_argument("--sparsity", type=float, default=0.9)
    p.add_argument("--scope", default="layerwise", choices=["global", "layerwise"])
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(torch.get_num_threads())
    xtr, ytr = mnist(Path(a.data), "train")
    xte, yte = mnist(Path(a.data), "test")

    model = Mlp()
    train(model, xtr, ytr, a.steps, torch.optim.Adam(model.parameters(), lr=1.2e-3))
    dense_acc = accuracy(model, xte, yte)

    # 1. Prune the trained model: the same masks as `lottery prune` would write.
    masks = lottery.prune(model.state_dict(), sparsity=a.sparsity, scope=a.scope)
    pruned = lottery.torch.ExactMask(model, masks)
    pruned_acc = accuracy(model, xte, yte)

    # 2. Fine-tune with the user's loop; ExactMask keeps the pruned weights at exactly 0.0
    #    through momentum and weight decay.
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    pruned.attach(opt)
    train(model, xtr, ytr, a.finetune, opt, seed=1)
    tuned_acc = accuracy(model, xte, yte)
    zeros_kept = all(
        bool((dict(model.named_parameters())[n].detach().numpy()[m == 0] == 0).all()) for n, m in masks.items()
    )

    # 3. Compact, save, reload, and check against the masked torch model on all of MNIST's test set.
    sparse = lottery.compact(model.state_dict(), masks, arch="mlp", input_shape=(1, 28, 28))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mnist_mlp.lsm"
        sparse.save(path)
        sparse = lottery.SparseModel.load(path)
        file_bytes = path.stat().st_size
    with torch.no_grad():
        model.eval()
        torch_logits = model(xte).numpy()
    ours = sparse.predict(xte.numpy())
    same_argmax = int((ours.argmax(1) == torch_logits.argmax(1)).sum())
    worst = float(np.max(np.abs(ours - torch_logits) / np.maximum(np.abs(torch_logits), 1.0)))

    # 4. Bytes and batch-1 latency against the dense torch model (PyTorch's own threads).
    dense = Mlp()
    dense.load_state_dict(model.state_dict())
    dense.eval()
    dense_bytes = sum(t.numel() * t.element_size() for t in dense.state_dict().values())
    one = xte[:1]
    with torch.inference_mode():
        torch_us = per_call_us(dense, one)
    ours_us = per_call_us(sparse.predict, one.numpy())

    result = {
        "dense_test_accuracy": dense_acc,
        "pruned_test_accuracy": pruned_acc,
        "finetuned_test_accuracy": tuned_acc,
        "sparsity": a.sparsity,
        "scope": a.scope,
        "pruned_weights_exactly_zero": zeros_kept,
        "live_weights": sparse.live_weights,
        "dense_bytes": dense_bytes,
        "lsm_bytes": file_bytes,
        "bytes_ratio": dense_bytes / file_bytes,
        "same_argmax": same_argmax,
        "test_images": len(xte),
        "largest_relative_difference": worst,
        "torch_dense_batch1_us": torch_us,
        "sparse_batch1_us": ours_us,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if a.json:
        print(json.dumps(result))
        return
    print(f"dense MLP: test accuracy {dense_acc:.2%}")
    print(f"pruned {a.sparsity:.0%} {a.scope} (lottery.prune): {pruned_acc:.2%}; fine-tuned {a.finetune} steps "
          f"with ExactMask: {tuned_acc:.2%}; pruned weights exactly 0.0: {zeros_kept}")
    print(f"compact: {sparse.live_weights} live weights, {file_bytes} bytes vs {dense_bytes} dense "
          f"({dense_bytes / file_bytes:.1f}× fewer)")
    print(f"same class as the masked torch model on {same_argmax}/{len(xte)} test images "
          f"(largest relative logit difference {worst:.1e})")
    print(f"batch 1: sparse predict {ours_us:.1f} µs, dense torch forward {torch_us:.1f} µs "
          f"({torch_us / ours_us:.1f}× faster)")


if __name__ == "__main__":
    main()
