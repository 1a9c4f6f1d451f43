"""Dense inference in PyTorch, for `lottery bench infer`: the same architecture, with the
ticket's weights when given (a `lottery export` file, loaded with strict names, which also
shows PyTorch loads our export as it is).

Prints one JSON object: {"batch1_latency_us", "batch64_samples_per_s", "batch256_samples_per_s",
"gemm_gflop_s", "torch", "threads"} (medians; the GEMM is 1024³ f32).
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mlp(nn.Module):
    """Linear layers fc1, fc2, … with ReLU between: the names `lottery export` writes."""

    def __init__(self, widths):
        super().__init__()
        self.n = len(widths) - 1
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            setattr(self, f"fc{i + 1}", nn.Linear(a, b))

    def forward(self, x):
        x = x.flatten(1)
        for i in range(self.n):
            x = getattr(self, f"fc{i + 1}")(x)
            if i + 1 < self.n:
                x = F.relu(x)
        return x


class ConvNet(nn.Module):
    """The LTH Conv-2/4/6: conv1…convN (3x3, padding 1, max-pool after each pair), fc1-fc3."""

    def __init__(self, pairs, shape, classes):
        super().__init__()
        c, size = shape[0], shape[1]
        self.n = 2 * pairs
        i = 0
        for width in [64, 128, 256][:pairs]:
            for _ in range(2):
                i += 1
                setattr(self, f"conv{i}", nn.Conv2d(c, width, 3, padding=1))
                c = width
        self.head = Mlp([c * (size >> pairs) ** 2, 256, 256, classes])

    def forward(self, x):
        for i in range(self.n):
            x = F.relu(getattr(self, f"conv{i + 1}")(x))
            if i % 2 == 1:
                x = F.max_pool2d(x, 2)
        return self.head(x)

    def load_flat(self, state):
        """Our names put fc1… beside conv1…; the head module holds them here."""
        own = {(f"head.{k}" if k.startswith("fc") else k): v for k, v in state.items()}
        self.load_state_dict(own, strict=True)


class Cnn1d(nn.Module):
    """The time-series CNN: conv1…convD (Conv1d, kernel 5, padding 2, ReLU), then fc1."""

    def __init__(self, depth, width, shape, classes):
        super().__init__()
        c, length = shape[0], shape[2]
        self.n = depth
        for i in range(depth):
            setattr(self, f"conv{i + 1}", nn.Conv1d(c if i == 0 else width, width, 5, padding=2))
        self.fc1 = nn.Linear(width * length, classes)

    def forward(self, x):
        x = x.flatten(1, 2)  # [b, c, 1, length] -> [b, c, length]
        for i in range(self.n):
            x = F.relu(getattr(self, f"conv{i + 1}")(x))
        return self.fc1(x.flatten(1))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp2(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp2(dim, 2 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, c, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(c, dim, patch, stride=patch)


class Vit(nn.Module):
    """vit_tiny / vit_DxWhH as `lottery export` names them (timm's names): 7×7 or 4×4 patches,
    a class token, learned positions, pre-norm blocks with MLP ratio 2, the head on the class
    token."""

    def __init__(self, depth, dim, heads, shape, classes):
        super().__init__()
        c, h, w = shape
        patch = 7 if h % 7 == 0 and w % 7 == 0 else 4
        tokens = (h // patch) * (w // patch)
        self.patch_embed = PatchEmbed(c, dim, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])


def build(name, shape, classes):
    inputs = shape[0] * shape[1] * shape[2]
    if name in ("lenet_300_100", "lenet"):
        return Mlp([inputs, 300, 100, classes])
    if name.startswith("mlp_"):
        return Mlp([inputs, *[int(w) for w in name[4:].split("_")], classes])
    if name in ("conv2", "conv4", "conv6"):
        return ConvNet(int(name[4]) // 2, shape, classes)
    if name.startswith("cnn1d_"):
        depth, width = name[6:].split("x")
        return Cnn1d(int(depth), int(width), shape, classes)
    if name == "vit_tiny":
        return Vit(2, 64, 4, shape, classes)
    if name.startswith("vit_"):
        depth, rest = name[4:].split("x")
        dim, heads = rest.split("h")
        return Vit(int(depth), int(dim), int(heads), shape, classes)
    raise SystemExit(f"torch_infer.py: no PyTorch definition for `{name}`")


def per_call(model, x, calls, block):
    """Median seconds per call, timing blocks of calls (one call is too short to time alone)."""
    with torch.inference_mode():
        for _ in range(max(3, calls // 10)):
            model(x)
        times = []
        for _ in range(max(1, calls // block)):
            start = time.perf_counter()
            for _ in range(block):
                model(x)
            times.append((time.perf_counter() - start) / block)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="lenet_300_100")
    p.add_argument("--input", default="1,28,28")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--weights")
    p.add_argument("--calls", type=int, default=2000, help="batch-1 calls; batches get fewer")
    a = p.parse_args()
    shape = tuple(int(d) for d in a.input.split(","))
    model = build(a.model, shape, a.classes).eval()
    if a.weights:
        from safetensors.torch import load_file

        state = load_file(a.weights)
        if isinstance(model, ConvNet):
            model.load_flat(state)
        else:
            model.load_state_dict(state, strict=True)
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    # PyTorch's own GEMM rate, so `lottery bench infer` can take the best GEMM on the machine.
    a_, b_ = torch.randn(1024, 1024), torch.randn(1024, 1024)
    out["gemm_gflop_s"] = 2 * 1024**3 / per_call(lambda _: torch.mm(a_, b_), None, 20, 1) / 1e9
    out["batch1_latency_us"] = per_call(model, torch.randn(1, *shape), a.calls, 20) * 1e6
    for b in (64, 256):
        s = per_call(model, torch.randn(b, *shape), max(20, a.calls * 4 // b), 2)
        out[f"batch{b}_samples_per_s"] = b / s
    print(json.dumps(out))


if __name__ == "__main__":
    main()
