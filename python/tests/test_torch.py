"""ExactMask and imp with real torch optimizers. torch is not installed in CI (these tests are
skipped there, with the reason); bench/python_example.sh runs them in the bench venv."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (CI tests ExactMask's arithmetic with numpy)")

import lottery  # noqa: E402
import lottery.torch  # noqa: E402


def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
        lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3, amsgrad=True),
    ],
)
def test_pruned_weights_stay_exactly_zero_through_1000_steps(make):
    model = net()
    masks = lottery.prune(model.state_dict(), 0.8)
    exact = lottery.torch.ExactMask(model, masks)
    opt = make(model.parameters())
    exact.attach(opt)
    x, y = torch.randn(64, 20), torch.randint(0, 4, (64,))
    params = dict(model.named_parameters())
    for _ in range(1000):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        for name, m in masks.items():
            assert (params[name].detach().numpy()[m == 0] == 0.0).all(), name
    for name, m in masks.items():
        kept = params[name].detach().numpy()[m == 1]
        assert np.count_nonzero(kept) == kept.size, "kept weights still train"
        for v in opt.state[params[name]].values():
            if isinstance(v, torch.Tensor) and v.shape == params[name].shape:
                assert (v.numpy()[m == 0] == 0).all()


def test_without_exact_mask_momentum_revives_pruned_weights():
    model = net()
    masks = lottery.prune(model.state_dict(), 0.8)
    lottery.torch.ExactMask(model, masks)  # zeroes once, hooks nothing
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    x, y = torch.randn(64, 20), torch.randint(0, 4, (64,))
    for _ in range(10):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    w = dict(model.named_parameters())["0.weight"].detach().numpy()
    assert np.count_nonzero(w[masks["0.weight"] == 0]) > 0


def test_imp_prunes_rewinds_and_trains_each_level():
    model = net()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(128, 20), torch.randint(0, 4, (128,))
    seen = []

    def train(m, mask):
        seen.append({k: v.clone() for k, v in m.state_dict().items()})
        opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        mask.attach(opt)
        for _ in range(50):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
        return (m(x).argmax(1) == y).float().mean().item()

    records = lottery.torch.imp(model, train, levels=3, rate=0.5)
    assert [r["level"] for r in records] == [0, 1, 2, 3]
    assert [round(r["sparsity"], 2) for r in records] == [0.0, 0.5, 0.75, 0.88]
    # Each level starts from the initial weights, masked.
    for r, start in zip(records[1:], seen[1:]):
        for name, m in r["masks"].items():
            want = init[name].numpy() * m
            assert np.array_equal(start[name].numpy(), want), name
