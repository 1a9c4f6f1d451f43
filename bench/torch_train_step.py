"""The same training step as `lottery bench train`, in PyTorch: same model, batch, optimizer,
random inputs, and a mask applied the usual way (gradient and weight multiplied by it).

Prints one JSON object: {"ms_per_step": median, "ms_per_step_masked": median}.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mlp(nn.Module):
    def __init__(self, inputs, hidden, classes=10):
        super().__init__()
        widths = [inputs, *hidden, classes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))

    def forward(self, x):
        x = x.flatten(1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = F.relu(x)
        return x


class ConvNet(nn.Module):
    """The LTH paper's Conv-2/4/6 (pairs of 3x3 convs, max-pool after each pair, fc 256-256-10)."""

    def __init__(self, pairs, channels=3, size=32, classes=10):
        super().__init__()
        convs, c = [], channels
        for width in [64, 128, 256][:pairs]:
            convs += [nn.Conv2d(c, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)]
            c = width
        self.convs = nn.ModuleList(convs)
        flat = c * (size >> pairs) ** 2
        self.fcs = nn.ModuleList([nn.Linear(flat, 256), nn.Linear(256, 256), nn.Linear(256, classes)])

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i % 2 == 1:
                x = F.max_pool2d(x, 2)
        x = x.flatten(1)
        for i, fc in enumerate(self.fcs):
            x = fc(x)
            if i + 1 < len(self.fcs):
                x = F.relu(x)
        return x


class Vgg(nn.Module):
    """CIFAR VGG as in OpenLTH (and lottery's `vgg16`): 3x3 convs without bias, batch norm, ReLU;
    a max-pool closing each stage but the last, which closes with a 2x2 average pool; fc 512-10."""

    PER_STAGE = {11: [1, 1, 2, 2, 2], 13: [2, 2, 2, 2, 2], 16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}

    def __init__(self, depth, classes=10):
        super().__init__()
        layers, c = [], 3
        for stage, (n, w) in enumerate(zip(self.PER_STAGE[depth], [64, 128, 256, 512, 512])):
            for i in range(n):
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
                c = w
            layers.append(nn.AvgPool2d(2) if stage == 4 else nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class Block(nn.Module):
    """A CIFAR ResNet basic block; a 1x1 projection (with batch norm) where the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    """He et al.'s CIFAR ResNet-(6n+2): 16/32/64 channels, n blocks per stage."""

    def __init__(self, depth, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, c = [], 16
        for i, w in enumerate([16, 32, 64]):
            for j in range(n):
                blocks.append(Block(c, w, 2 if i > 0 and j == 0 else 1))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def build(name):
    if name in ("lenet_300_100", "lenet"):
        return Mlp(784, [300, 100]), (1, 28, 28)
    if name.startswith("mlp_"):
        return Mlp(784, [int(w) for w in name[4:].split("_")]), (1, 28, 28)
    if name in ("conv2", "conv4", "conv6"):
        return ConvNet(int(name[-1]) // 2), (3, 32, 32)
    if name.startswith("vgg"):
        return Vgg(int(name.removeprefix("vgg").removeprefix("_"))), (3, 32, 32)
    if name.startswith("resnet"):
        return ResNet(int(name.removeprefix("resnet").removeprefix("_"))), (3, 32, 32)
    raise SystemExit(f"unknown model {name}")


def time_steps(model, masks, opt, x, y, steps, warmup):
    ms = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if masks:
            for p, m in masks:
                p.grad.mul_(m)
        opt.step()
        if masks:
            with torch.no_grad():
                for p, m in masks:
                    p.mul_(m)
        loss.item()  # our step reads the loss back too
        if i >= warmup:
            ms.append((time.perf_counter() - t) * 1e3)
    ms.sort()
    return ms[len(ms) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lenet_300_100")
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--lr", type=float, default=1.2e-3)
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--nesterov", action="store_true")
    ap.add_argument("--batch-size", type=int, default=60)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup-steps", type=int, default=20)
    ap.add_argument("--sparsity", type=float, default=0.8)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    dev = torch.device(a.device)

    torch.manual_seed(0)
    result = {}
    for masked in (False, True):
        model, shape = build(a.model)
        model = model.to(dev)
        if a.optimizer == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=a.lr)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, nesterov=a.nesterov)
        masks = []
        if masked:
            for name, p in model.named_parameters():
                if name.endswith("weight"):
                    m = (torch.rand_like(p) >= a.sparsity).float()
                    with torch.no_grad():
                        p.mul_(m)
                    masks.append((p, m))
        x = torch.randn(a.batch_size, *shape, device=dev)
        y = torch.randint(0, 10, (a.batch_size,), device=dev)
        key = "ms_per_step_masked" if masked else "ms_per_step"
        result[key] = time_steps(model, masks, opt, x, y, a.steps, a.warmup_steps)
    result["threads"] = torch.get_num_threads()
    result["torch"] = torch.__version__
    result["device"] = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
