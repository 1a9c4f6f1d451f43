"""Do `lottery prune` on any state dict and torch.nn.utils.prune choose the same masks?

Builds models in PyTorch (a ResNet-18 with batch norm and downsample shortcuts, a plain
nn.Sequential MLP, and a LeNet-300-100 trained for a few hundred steps on random data so the
weights are trained rather than drawn), saves each state dict as safetensors, prunes it with
`lottery prune FILE --sparsity S --scope global|layerwise`, prunes the same module with
`prune.global_unstructured(..., pruning_method=prune.L1Unstructured)` or
`prune.l1_unstructured` per layer, and compares the masks entry by entry.

Tie-breaking: lottery orders equal scores by tensor name, then position; PyTorch's `topk` leaves
their order unspecified. Rounding: PyTorch prunes `round(amount * n)` with Python's round (half to
even), lottery rounds half away from zero; the two differ only when `amount * n` ends in exactly .5.
The script reports both kinds of difference separately.

Usage: bench/.venv/bin/python bench/torch_prune_check.py [--lottery target/release/lottery]
(bench/train_step.sh creates bench/.venv with torch; this script also needs safetensors).
"""

import argparse
import copy
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils import prune


def resnet18(classes=10):
    """torchvision's ResNet-18 layout and names, written out (no torchvision dependency)."""

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            widths = [64, 128, 256, 512]
            cin = 64
            for i, w in enumerate(widths):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nn.Sequential(Block(cin, w, stride), Block(w, w, 1)))
                cin = w
            self.fc = nn.Linear(512, classes)

    return ResNet()


def mlp():
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))


def trained_lenet(steps=300):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                        nn.ReLU(), nn.Linear(100, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1.2e-3)
    x = torch.randn(600, 784)
    y = torch.randint(0, 10, (600,))
    for i in range(steps):
        b = slice((i * 60) % 600, (i * 60) % 600 + 60)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[b]), y[b]).backward()
        opt.step()
    return net


def prunable(model):
    """Linear and convolution weights: what lottery's architecture-free selection picks."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]


def torch_masks(model, sparsity, scope):
    pairs = prunable(model)
    if scope == "global":
        prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=sparsity)
    else:
        for m, name in pairs:
            prune.l1_unstructured(m, name, amount=sparsity)
    names = {id(m): n for n, m in model.named_modules()}
    out = {}
    for m, name in pairs:
        key = f"{names[id(m)]}.{name}" if names[id(m)] else name
        out[key] = getattr(m, f"{name}_mask").detach().clone()
        prune.remove(m, name)
    return out


def lottery_masks(exe, path, sparsity, scope, out):
    subprocess.run([exe, "prune", str(path), "--sparsity", str(sparsity), "--scope", scope,
                    "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return load_file(str(Path(out) / "mask.safetensors"))


def compare(ours, theirs):
    """(entries differing, tensors compared, kept by lottery, kept by torch)."""
    assert set(ours) == set(theirs), (sorted(ours), sorted(theirs))
    diff = sum(int((ours[k].float() != theirs[k].float()).sum()) for k in ours)
    kept_ours = sum(int(ours[k].sum()) for k in ours)
    kept_theirs = sum(int(theirs[k].sum()) for k in theirs)
    return diff, len(ours), kept_ours, kept_theirs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lottery", default="target/release/lottery")
    p.add_argument("--sparsities", default="0.2,0.5,0.9,0.99")
    a = p.parse_args()
    torch.manual_seed(0)
    models = {"resnet18": resnet18(), "mlp_sequential": mlp(), "lenet_trained": trained_lenet()}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            path = Path(tmp) / f"{name}.safetensors"
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
            weights = [getattr(m, n).detach().flatten().abs() for m, n in prunable(model)]
            flat = torch.cat(weights)
            ties = flat.numel() - torch.unique(flat).numel()
            for s in [float(x) for x in a.sparsities.split(",")]:
                for scope in ["global", "layerwise"]:
                    ours = lottery_masks(a.lottery, path, s, scope, Path(tmp) / f"{name}-{s}-{scope}")
                    # prune.remove makes the zeros permanent: each check prunes a fresh copy.
                    theirs = torch_masks(copy.deepcopy(model), s, scope)
                    diff, n, ko, kt = compare(ours, theirs)
                    rows.append(dict(model=name, sparsity=s, scope=scope, tensors=n,
                                     weights=flat.numel(), equal_abs_values=ties,
                                     kept_lottery=ko, kept_torch=kt, entries_differing=diff))
    print(f"torch {torch.__version__}")
    print(f"{'model':<16} {'sparsity':>8} {'scope':<9} {'tensors':>7} {'weights':>10} {'ties':>6} "
          f"{'kept lottery':>12} {'kept torch':>10} {'differ':>7}")
    for r in rows:
        print(f"{r['model']:<16} {r['sparsity']:>8} {r['scope']:<9} {r['tensors']:>7} {r['weights']:>10} "
              f"{r['equal_abs_values']:>6} {r['kept_lottery']:>12} {r['kept_torch']:>10} {r['entries_differing']:>7}")
    return 0 if all(r["entries_differing"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
