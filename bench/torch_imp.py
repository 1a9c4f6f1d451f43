"""The `quick` lottery experiment in PyTorch, for wall-time comparison on the same machine:
LeNet-300-100 on MNIST (bundled IDX files), Glorot-normal init, Adam 1.2e-3, batch 60,
5,000 validation images, evaluation on validation and test every --eval-every iterations,
layer-wise magnitude pruning (20% hidden, 10% output per level), rewinding to init,
ticket + reinit control per level. Masking: gradient and weight multiplied by the mask.

    bench/.venv/bin/python bench/torch_imp.py --levels 11 --iterations 2500 --eval-every 250
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn.functional as F


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(root):
    norm = lambda x: torch.tensor((x.reshape(len(x), -1) / 255.0 - 0.1307) / 0.3081, dtype=torch.float32)
    x, y = norm(idx(f"{root}/train-images-idx3-ubyte.gz")), torch.tensor(idx(f"{root}/train-labels-idx1-ubyte.gz"), dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    val, train = perm[:5000], perm[5000:]
    tx, ty = norm(idx(f"{root}/t10k-images-idx3-ubyte.gz")), torch.tensor(idx(f"{root}/t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
    return (x[train], y[train]), (x[val], y[val]), (tx, ty)


def lenet(seed):
    torch.manual_seed(seed)
    layers = [torch.nn.Linear(784, 300), torch.nn.Linear(300, 100), torch.nn.Linear(100, 10)]
    for l in layers:
        torch.nn.init.xavier_normal_(l.weight)
        torch.nn.init.zeros_(l.bias)
    return torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2])


def evaluate(model, x, y):
    with torch.no_grad():
        out = torch.cat([model(x[i:i + 1000]) for i in range(0, len(x), 1000)])
        return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()


def train(model, masks, data, iterations, eval_every, seed):
    (x, y), val, test = data
    weights = [m.weight for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for w, m in zip(weights, masks):
            w.mul_(m)
    opt = torch.optim.Adam(model.parameters(), lr=1.2e-3)
    g = torch.Generator().manual_seed(seed)
    order, pos = torch.randperm(len(x), generator=g), 0
    best = (float("inf"), 0)
    for it in range(1, iterations + 1):
        if pos + 60 > len(x):
            order, pos = torch.randperm(len(x), generator=g), 0
        b = order[pos:pos + 60]
        pos += 60
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[b]), y[b])
        loss.backward()
        for w, m in zip(weights, masks):
            w.grad.mul_(m)
        opt.step()
        with torch.no_grad():
            for w, m in zip(weights, masks):
                w.mul_(m)
        if it % eval_every == 0 or it == iterations:
            vl, _ = evaluate(model, *val)
            _, acc = evaluate(model, *test)
            best = min(best, (vl, it))
    return acc, best[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--levels", type=int, default=11)
    ap.add_argument("--iterations", type=int, default=2500)
    ap.add_argument("--eval-every", type=int, default=250)
    a = ap.parse_args()
    data = load(a.data)
    start = time.perf_counter()
    init = lenet(0)
    init_state = {k: v.clone() for k, v in init.state_dict().items()}
    masks = [torch.ones_like(m.weight) for m in init if isinstance(m, torch.nn.Linear)]
    for level in range(a.levels + 1):
        if level > 0:
            rates = [0.2, 0.2, 0.1]
            for i, (w, r) in enumerate(zip(trained, rates)):
                alive = masks[i].bool()
                k = round(alive.sum().item() * r)
                scores = w.abs().masked_fill(~alive, float("inf")).flatten()
                masks[i] = masks[i].flatten().clone()
                masks[i][scores.argsort()[:k]] = 0
                masks[i] = masks[i].view_as(w)
        ticket = lenet(0)
        ticket.load_state_dict(init_state)
        acc, stop = train(ticket, masks, data, a.iterations, a.eval_every, 0)
        trained = [m.weight.detach().clone() for m in ticket if isinstance(m, torch.nn.Linear)]
        line = f"level {level:2d}  remaining {sum(m.sum().item() for m in masks) / sum(m.numel() for m in masks) * 100:6.2f}%  ticket {acc * 100:.2f}% (stop {stop})"
        if level > 0:
            racc, _ = train(lenet(1000 + level), masks, data, a.iterations, a.eval_every, 0)
            line += f"  reinit {racc * 100:.2f}%"
        print(line, flush=True)
    print(f"wall time {time.perf_counter() - start:.1f} s, {torch.get_num_threads()} threads, torch {torch.__version__}")


if __name__ == "__main__":
    main()
