"""The Python package against the CLI and against plain numpy, and its errors. No torch."""

import re

import numpy as np
import pytest

import lottery
from lottery._mask import zero_masked

from conftest import (
    load_safetensors,
    mlp_forward,
    mnist_test,
    random_dict,
    save_safetensors,
)

# A model lottery does not know: convolutions, batch norm, a classifier, an integer counter.
ANY = [
    ("features.0.weight", (8, 3, 3, 3)),
    ("features.0.bias", (8,)),
    ("features.1.weight", (8,)),
    ("features.1.running_mean", (8,)),
    ("features.3.weight", (16, 8, 3, 3)),
    ("classifier.weight", (10, 64)),
    ("classifier.bias", (10,)),
]
LENET = [
    ("fc1.weight", (300, 784)),
    ("fc1.bias", (300,)),
    ("fc2.weight", (100, 300)),
    ("fc2.bias", (100,)),
    ("fc3.weight", (10, 100)),
    ("fc3.bias", (10,)),
]


@pytest.mark.parametrize(
    "flags, kwargs",
    [
        (["--scope", "layerwise"], dict(scope="layerwise")),
        (["--scope", "global"], dict(scope="global")),
        (["--criterion", "random", "--seed", "7"], dict(criterion="random", seed=7)),
        (["--exclude", "classifier"], dict(exclude=["classifier"])),
    ],
)
def test_masks_are_the_clis_bit_for_bit(tmp_path, cli, flags, kwargs):
    sd = random_dict(ANY, seed=1)
    path = tmp_path / "model.safetensors"
    save_safetensors(path, sd)
    cli("prune", path, "--sparsity", "0.8", *flags, "--out", tmp_path / "out")
    theirs = load_safetensors(tmp_path / "out/mask.safetensors")
    ours = lottery.prune(sd, 0.8, **kwargs)
    assert sorted(ours) == sorted(theirs)
    for name, m in ours.items():
        assert m.dtype == np.uint8
        assert np.array_equal(m, theirs[name].astype(np.uint8)), name
    # Biases, norms and running statistics stay dense; the excluded tensor too.
    assert "features.1.weight" not in ours and "features.0.bias" not in ours
    kept = lottery.sparsity(sd, ours)["total"]
    assert abs(kept[0] / kept[1] - 0.2) < 0.01


def test_predict_is_the_masked_networks_forward_pass():
    sd = random_dict([("fc1.weight", (64, 20)), ("fc1.bias", (64,)), ("fc2.weight", (32, 64)),
                      ("fc2.bias", (32,)), ("fc10.weight", (5, 32)), ("fc10.bias", (5,))], seed=2)
    masks = lottery.prune(sd, 0.7, scope="global")
    # A hidden unit nothing feeds: a constant that compaction folds into the next bias.
    masks["fc1.weight"][3] = 0
    model = lottery.compact(sd, masks)
    assert model.input_shape == (1, 1, 20) and model.outputs == 5
    assert model.live_weights <= int(sum(m.sum() for m in masks.values()))
    pruned = lottery.apply(sd, masks)
    assert np.count_nonzero(pruned["fc1.weight"][3]) == 0
    rng = np.random.default_rng(3)
    for batch in (1, 7, 300):
        x = rng.normal(size=(batch, 20)).astype(np.float32)
        want = mlp_forward(pruned, x, ["fc1", "fc2", "fc10"])
        got = model.predict(x)
        assert got.shape == (batch, 5) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # One example without a batch axis, and a list.
    np.testing.assert_allclose(model.predict(x[0]), want[:1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict(x[:2].tolist()), want[:2], rtol=1e-4, atol=1e-5)


def test_lsm_files_go_both_ways_between_python_and_the_cli(tmp_path, cli):
    images, labels = mnist_test()
    # Python → CLI: the CLI runs our file on MNIST and finds the accuracy we find.
    sd = random_dict([("0.weight", (32, 784)), ("0.bias", (32,)), ("2.weight", (10, 32)),
                      ("2.bias", (10,))], seed=4)
    masks = lottery.prune(sd, 0.9)
    ours = lottery.compact(sd, masks, input_shape=(1, 28, 28))
    ours.save(tmp_path / "py.lsm")
    text = cli("infer", tmp_path / "py.lsm", "--dataset", "mnist")
    correct = int(re.search(r"\((\d+)/10000\)", text).group(1))
    assert correct == int((ours.predict(images).argmax(1) == labels).sum()), text
    again = lottery.SparseModel.load(tmp_path / "py.lsm")
    assert np.array_equal(again.predict(images[:50]), ours.predict(images[:50]))
    assert again.nbytes == (tmp_path / "py.lsm").stat().st_size

    # CLI → Python: `lottery prune` and `lottery compact` on a LeNet; we run its file.
    sd = random_dict(LENET, seed=5)
    save_safetensors(tmp_path / "lenet.safetensors", sd)
    cli("prune", tmp_path / "lenet.safetensors", "--sparsity", "0.9", "--out", tmp_path / "p")
    cli("compact", tmp_path / "p", "-o", tmp_path / "cli.lsm")
    theirs = lottery.SparseModel.load(tmp_path / "cli.lsm")
    pruned = lottery.apply(sd, load_safetensors(tmp_path / "p/mask.safetensors"))
    want = mlp_forward(pruned, images[:200], ["fc1", "fc2", "fc3"])
    np.testing.assert_allclose(theirs.predict(images[:200]), want, rtol=1e-4, atol=1e-5)
    # 90% pruned, nothing to remove (random weights): CSR and bitmask make it ~8× smaller.
    assert theirs.nbytes * 5 < sum(a.nbytes for a in sd.values())


# Channels per convolution, and whether a pool follows ("M" max, "A" average): the tests' own
# copy of the plans, to build state dicts in lottery's names.
PLANS = {
    "conv2": [(64, ""), (64, "M")],
    "vgg11": [(64, "M"), (128, "M"), (256, ""), (256, "M"), (512, ""), (512, "M"), (512, ""), (512, "A")],
}


@pytest.mark.parametrize("arch, shape, dataset", [("conv2", (1, 28, 28), "mnist"), ("vgg11", (3, 32, 32), "cifar10")])
def test_conv_nets_compact_as_the_cli_compacts_them(tmp_path, cli, arch, shape, dataset):
    layout, c, h = [], shape[0], shape[1]
    for i, (width, pool) in enumerate(PLANS[arch], start=1):
        layout.append((f"conv{i}.weight", (width, c, 3, 3)))
        if arch.startswith("vgg"):
            layout += [(f"bn{i}.{p}", (width,)) for p in ("weight", "bias", "running_mean", "running_var")]
        else:
            layout.append((f"conv{i}.bias", (width,)))
        c, h = width, h // 2 if pool else h
    widths = [c * h * h] + ([256, 256] if arch.startswith("conv") else []) + [10]
    for i, (a, b) in enumerate(zip(widths, widths[1:]), start=1):
        layout += [(f"fc{i}.weight", (b, a)), (f"fc{i}.bias", (b,))]
    sd = random_dict(layout, seed=11)
    # Batch-norm scales and variances away from 0 and 1, so a wrong fold shows.
    rng = np.random.default_rng(10)
    for n in sd:
        if n.startswith("bn") and (n.endswith(".weight") or n.endswith("running_var")):
            sd[n] = rng.uniform(0.5, 1.5, size=sd[n].shape).astype(np.float32)
    masks = lottery.prune(sd, 0.8)
    ours = lottery.compact(sd, masks, arch=arch, input_shape=shape)
    save_safetensors(tmp_path / "w.safetensors", lottery.apply(sd, masks))
    cli("compact", tmp_path / "w.safetensors", "--model", arch, "--dataset", dataset, "-o", tmp_path / "c.lsm")
    theirs = lottery.SparseModel.load(tmp_path / "c.lsm")
    assert ours.live_weights == theirs.live_weights
    x = rng.normal(size=(3, *shape)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=1e-5, atol=1e-6)


def test_a_time_series_cnn_compacts_to_its_forward_pass():
    sd = random_dict([("conv1.weight", (6, 2, 5)), ("conv1.bias", (6,)), ("conv2.weight", (6, 6, 5)),
                      ("conv2.bias", (6,)), ("fc1.weight", (1, 6 * 16)), ("fc1.bias", (1,))], seed=6)
    masks = lottery.prune(sd, 0.6)
    model = lottery.compact(sd, masks, input_shape=(2, 1, 16))  # arch inferred: cnn1d
    pruned = lottery.apply(sd, masks)
    x = np.random.default_rng(7).normal(size=(9, 2, 1, 16)).astype(np.float32)

    def conv(a, w, b):  # Conv1d, kernel 5, padding 2, then ReLU
        padded = np.pad(a, ((0, 0), (0, 0), (2, 2)))
        windows = np.stack([padded[:, :, k:k + a.shape[2]] for k in range(5)], axis=-1)
        return np.maximum(np.einsum("bilk,oik->bol", windows, w) + b[None, :, None], 0)

    a = conv(x[:, :, 0, :].astype(np.float64), pruned["conv1.weight"], pruned["conv1.bias"])
    a = conv(a, pruned["conv2.weight"], pruned["conv2.bias"])
    want = a.reshape(9, -1) @ pruned["fc1.weight"].T + pruned["fc1.bias"]
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-4, atol=1e-5)


def test_a_vision_transformer_compacts_as_the_cli_compacts_it(tmp_path, cli):
    d, hidden, tokens = 8, 16, 17
    layout = [("patch_embed.proj.weight", (d, 1, 7, 7)), ("patch_embed.proj.bias", (d,)),
              ("cls_token", (1, 1, d)), ("pos_embed", (1, tokens, d)),
              ("norm.weight", (d,)), ("norm.bias", (d,)), ("head.weight", (10, d)), ("head.bias", (10,))]
    for part, shape in [("norm1.weight", (d,)), ("norm1.bias", (d,)), ("attn.qkv.weight", (3 * d, d)),
                        ("attn.qkv.bias", (3 * d,)), ("attn.proj.weight", (d, d)), ("attn.proj.bias", (d,)),
                        ("norm2.weight", (d,)), ("norm2.bias", (d,)), ("mlp.fc1.weight", (hidden, d)),
                        ("mlp.fc1.bias", (hidden,)), ("mlp.fc2.weight", (d, hidden)), ("mlp.fc2.bias", (d,))]:
        layout.append((f"blocks.0.{part}", shape))
    sd = random_dict(layout, seed=8)
    sd = {n: (a + 1 if n.endswith("norm1.weight") or n.endswith("norm2.weight") or n == "norm.weight" else a)
          for n, a in sd.items()}
    masks = lottery.prune(sd, 0.7)
    assert sorted(masks) == ["blocks.0.attn.proj.weight", "blocks.0.attn.qkv.weight",
                             "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.weight", "head.weight"]
    ours = lottery.compact(sd, masks, arch="vit_1x8h2", input_shape=(1, 28, 28))
    save_safetensors(tmp_path / "vit.safetensors", lottery.apply(sd, masks))
    cli("compact", tmp_path / "vit.safetensors", "--model", "vit_1x8h2", "-o", tmp_path / "vit.lsm")
    theirs = lottery.SparseModel.load(tmp_path / "vit.lsm")
    assert ours.live_weights == theirs.live_weights
    x = np.random.default_rng(9).normal(size=(5, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    with pytest.raises(ValueError, match="heads"):
        lottery.compact(sd, masks, input_shape=(1, 28, 28))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda sd: lottery.prune({**sd, "fc1.weight": np.ones((4, 3), np.int64)}), "dtype int64"),
        (lambda sd: lottery.prune({**sd, "fc1.weight": [[1.0, 2.0], [3.0]]}), "fc1.weight"),
        (lambda sd: lottery.prune(sd, 1.0), "outside [0, 1)"),
        (lambda sd: lottery.prune(sd, -0.1), "outside [0, 1)"),
        (lambda sd: lottery.prune(sd, float("nan")), "sparsity"),
        (lambda sd: lottery.prune(sd, 0.5, scope="wide"), "`wide` is not one of layerwise, global"),
        (lambda sd: lottery.prune(sd, 0.5, criterion="best"), "`best` is not one of"),
        (lambda sd: lottery.prune(sd, 0.5, criterion="snip"), "needs gradients"),
        (lambda sd: lottery.prune(sd, 0.5, criterion="large_init"), "initial weights"),
        (lambda sd: lottery.prune(sd, 0.5, exclude=["nothing"]), "`nothing` matches no tensor"),
        (lambda sd: lottery.prune({"fc1.bias": sd["fc1.bias"]}, 0.5), "no prunable tensor"),
        (lambda sd: lottery.prune([1, 2]), "mapping"),
        (lambda sd: lottery.compact(sd, arch="conv3", input_shape=(4,)), "arch `conv3` is not one"),
        (lambda sd: lottery.compact(sd, arch="conv2", input_shape=(4,)), "no `conv1.weight`"),
        (lambda sd: lottery.compact(sd, arch="cnn1d"), "needs input_shape"),
        (lambda sd: lottery.compact({**sd, "c.weight": np.ones((2, 1, 3, 3))}), "say arch="),
        (lambda sd: lottery.compact(sd, {"fc1.weight": np.full((3, 4), 2)}), "other than 0 and 1"),
        (lambda sd: lottery.compact(sd, {"fc9.weight": np.ones((3, 4))}), "fc9.weight"),
        (lambda sd: lottery.compact(sd, input_shape=(1, 5, 5)), "reads 4 inputs"),
        (lambda sd: lottery.compact(sd).predict(np.ones(5)), "not examples of"),
        (lambda sd: lottery.apply(sd, {"fc1.weight": np.ones((4, 3))}), "shape"),
    ],
)
def test_bad_input_raises_value_error_in_one_line(call, message):
    sd = random_dict([("fc1.weight", (3, 4)), ("fc1.bias", (3,)), ("fc2.weight", (2, 3)),
                      ("fc2.bias", (2,))])
    with pytest.raises(ValueError) as e:
        call(sd)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_unreadable_files_raise_os_error_naming_them(tmp_path):
    bad = tmp_path / "bad.lsm"
    bad.write_bytes(b"not a model")
    with pytest.raises(OSError, match="bad.lsm"):
        lottery.SparseModel.load(bad)
    with pytest.raises(OSError, match="missing.lsm"):
        lottery.SparseModel.load(tmp_path / "missing.lsm")


def sgd_steps(w, keep, steps, exact):
    """SGD with momentum and weight decay in numpy, as torch.optim.SGD computes it, with
    ExactMask's zeroing around each step when `exact`; returns the weights."""
    rng = np.random.default_rng(0)
    buf = np.zeros_like(w)
    w = w * keep
    for _ in range(steps):
        grad = rng.normal(size=w.shape).astype(np.float32)
        if exact:
            zero_masked([grad], keep)
        grad = grad + 5e-4 * w
        buf[:] = 0.9 * buf + grad
        w -= 0.01 * buf
        if exact:
            zero_masked([w, buf, np.zeros(3)], keep)
    return w


def test_exact_mask_arithmetic_keeps_pruned_weights_at_zero():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(20, 30)).astype(np.float32)
    keep = (rng.random((20, 30)) > 0.8).astype(np.float32)
    exact = sgd_steps(w, keep, 1000, exact=True)
    assert np.all(exact[keep == 0] == 0.0)
    assert np.count_nonzero(exact[keep == 1]) == int(keep.sum())
    # Zeroing the weights once, as other tools do, is not enough: momentum revives them.
    once = sgd_steps(w, keep, 1000, exact=False)
    assert np.count_nonzero(once[keep == 0]) > 0
