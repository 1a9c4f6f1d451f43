"""Lottery tickets from Python.

Prune a trained model's state dict with the same code and the same masks as ``lottery prune``,
apply the masks, and compact the pruned network into a small, fast ``SparseModel``::

    import lottery
    masks = lottery.prune(model.state_dict(), sparsity=0.9, scope="global")
    sparse = lottery.compact(model.state_dict(), masks, arch="mlp", input_shape=(1, 28, 28))
    logits = sparse.predict(images)          # numpy in, numpy out

State dicts are mappings from names to arrays: numpy arrays, or anything ``numpy.asarray``
reads (PyTorch tensors, including ones that require grad or live on a GPU, are detached and
copied to the CPU first). ``lottery.torch`` keeps pruned weights exactly 0.0 in your own PyTorch
training loop and runs iterative magnitude pruning around it.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Mapping, Optional, Tuple

import numpy as np

from . import _native

__all__ = ["prune", "apply", "sparsity", "compact", "SparseModel"]

Masks = Dict[str, np.ndarray]


def _array(name: str, value) -> np.ndarray:
    """One tensor as a numpy array; torch tensors are detached and brought to the CPU."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "cpu"):
        value = value.cpu()
    try:
        a = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"tensor `{name}` is not an array: {e}") from None
    if a.dtype == object:
        raise ValueError(f"tensor `{name}` is ragged or not numeric")
    return a


def _floats(state_dict: Mapping, what: str = "state_dict") -> list:
    """A state dict as (name, shape, little-endian float32 bytes) for the native module."""
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{what} must be a mapping from names to arrays, not {type(state_dict).__name__}")
    out = []
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise ValueError(f"{what}: names must be strings, not {name!r}")
        a = _array(name, value)
        if not np.issubdtype(a.dtype, np.floating):
            if name.endswith("num_batches_tracked"):
                continue  # an integer counter BatchNorm keeps; never a weight
            raise ValueError(
                f"tensor `{name}` has dtype {a.dtype}; weights are floating point (float16/32/64)"
            )
        a = np.ascontiguousarray(a, dtype="<f4")
        out.append((name, list(a.shape), a.tobytes()))
    return out


def _masks(masks: Mapping) -> list:
    """Masks as (name, shape, uint8 bytes)."""
    if not isinstance(masks, Mapping):
        raise ValueError(f"masks must be a mapping from names to 0/1 arrays, not {type(masks).__name__}")
    out = []
    for name, value in masks.items():
        a = _array(name, value)
        if a.dtype != np.bool_ and not np.all((a == 0) | (a == 1)):
            raise ValueError(f"mask `{name}` holds values other than 0 and 1")
        a = np.ascontiguousarray(a, dtype=np.uint8)
        out.append((name, list(a.shape), a.tobytes()))
    return out


def prune(
    state_dict: Mapping,
    sparsity: float = 0.9,
    scope: str = "layerwise",
    criterion: str = "magnitude",
    include: Optional[Iterable[str]] = None,
    exclude: Optional[Iterable[str]] = None,
    *,
    seed: int = 0,
    output_layer: Optional[str] = None,
    output_sparsity: Optional[float] = None,
    init: Optional[Mapping] = None,
    mask: Optional[Mapping] = None,
) -> Masks:
    """Masks that prune ``sparsity`` of the state dict's prunable weights.

    The same masks as ``lottery prune FILE --sparsity S --scope SCOPE`` on the same weights, bit
    for bit. Prunable: the weights of linear and convolution layers (``*.weight`` of rank 2-5);
    never biases, normalisation parameters, running statistics or embeddings unless ``include``
    names them (substrings); ``exclude`` keeps tensors dense. ``scope`` is ``"layerwise"`` (each
    tensor at the same rate) or ``"global"`` (one magnitude threshold). ``criterion`` is any of
    the CLI's weight-based criteria (``magnitude``, ``random``, ``large_init`` and the others that
    compare with ``init``). An earlier ``mask`` is pruned further, to ``sparsity`` overall.

    Returns ``{name: numpy.uint8 array}`` (1 keeps a weight) for every pruned tensor.
    """
    if not isinstance(sparsity, (int, float)) or math.isnan(sparsity):
        raise ValueError(f"sparsity must be a number in [0, 1), not {sparsity!r}")
    masks, _dense = _native.prune(
        _floats(state_dict),
        float(sparsity),
        scope,
        criterion,
        list(include or []),
        list(exclude or []),
        int(seed),
        output_layer,
        None if output_sparsity is None else float(output_sparsity),
        None if init is None else _floats(init, "init"),
        None if mask is None else _masks(mask),
    )
    return {
        name: np.frombuffer(data, dtype=np.uint8).reshape(shape).copy()
        for name, shape, data in masks
    }


def apply(state_dict: Mapping, masks: Mapping) -> Dict[str, np.ndarray]:
    """A pruned copy of the state dict as numpy arrays: masked weights set to exactly 0.0."""
    out = {}
    for name, value in state_dict.items():
        a = np.array(_array(name, value), copy=True)
        if name in masks:
            m = _array(name, masks[name])
            if m.shape != a.shape:
                raise ValueError(f"mask `{name}` has shape {m.shape}, the tensor {a.shape}")
            a[m == 0] = 0
        out[name] = a
    missing = set(masks) - set(state_dict)
    if missing:
        raise ValueError(f"masks name tensors the state dict lacks: {', '.join(sorted(missing))}")
    return out


def sparsity(state_dict: Mapping, masks: Optional[Mapping] = None) -> Dict[str, Tuple[int, int]]:
    """Nonzero and total entries per tensor (per masked tensor when ``masks`` is given), with
    ``"total"`` summing them: ``{name: (nonzero, size)}``."""
    names = list(masks) if masks is not None else list(state_dict)
    report = {}
    for name in names:
        a = _array(name, (masks if masks is not None else state_dict)[name])
        report[name] = (int(np.count_nonzero(a)), int(a.size))
    report["total"] = (sum(v[0] for v in report.values()), sum(v[1] for v in report.values()))
    return report


class SparseModel:
    """A compact ticket: only the live weights, run by lottery's sparse kernels.

    ``predict`` takes a batch (``[batch, *input_shape]`` or ``[batch, features]``) or one example
    of any array type and returns float32 outputs ``[batch, outputs]``. ``save`` writes the same
    ``.lsm`` file as ``lottery compact``; ``SparseModel.load`` reads either.
    """

    def __init__(self, native: "_native.Model"):
        self._m = native

    @classmethod
    def load(cls, path) -> "SparseModel":
        return cls(_native.Model.load(str(path)))

    def save(self, path) -> None:
        self._m.save(str(path))

    def predict(self, x) -> np.ndarray:
        a = _array("x", x)
        features = math.prod(self.input_shape)
        if a.size % features != 0 or a.ndim == 0:
            raise ValueError(
                f"x of shape {a.shape} is not examples of {self.input_shape} ({features} values each)"
            )
        batch = a.size // features
        a = np.ascontiguousarray(a, dtype="<f4")
        out = self._m.predict(a.tobytes(), batch)
        return np.frombuffer(out, dtype="<f4").reshape(batch, self.outputs)

    __call__ = predict

    @property
    def live_weights(self) -> int:
        """Weights left after pruning and compaction."""
        return self._m.live_weights

    @property
    def nbytes(self) -> int:
        """Bytes of the model's ``.lsm`` file."""
        return self._m.nbytes

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return self._m.input_shape

    @property
    def outputs(self) -> int:
        return self._m.outputs

    def __repr__(self) -> str:
        return (
            f"SparseModel({self._m.source}, input {self.input_shape}, {self.outputs} outputs, "
            f"{self.live_weights} live weights, {self.nbytes} bytes)"
        )


def compact(
    state_dict: Mapping,
    masks: Optional[Mapping] = None,
    arch: Optional[str] = None,
    input_shape: Optional[Tuple[int, ...]] = None,
) -> SparseModel:
    """The pruned network as a ``SparseModel``: masked weights dropped, units that nothing reads
    or feeds removed (constants folded into the next layer's bias).

    ``arch``:

    - ``"mlp"``: linear layers in the order of their names (numbers compared as numbers), ReLU
      between them; inferred when every tensor is a ``[outputs, inputs]`` weight or a bias;
    - ``"cnn1d"``: ``Conv1d`` layers (odd kernel, same padding, ReLU) then linear layers, as
      lottery's time-series CNN; inferred from ``[out, in, k]`` weights; ``input_shape`` is
      ``(channels, 1, length)``;
    - ``"conv2"``, ``"conv4"``, ``"conv6"`` (the LTH paper's) and ``"vgg11"``…``"vgg19"`` (OpenLTH's
      CIFAR VGGs, batch norm folded in at its running statistics, epsilon 1e-5) in lottery's
      names (``conv1…``, ``bn1…``, ``fc1…``: what ``lottery export`` writes);
    - ``"vit_tiny"`` or ``"vit_DxWhH"`` (``H`` attention heads): a vision transformer in timm's
      names (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N…``, ``norm``,
      ``head``; layer norms with epsilon 1e-6), as lottery's ``vit`` family.

    ``input_shape`` is one example's shape (for an MLP, default: the first layer's inputs, flat).
    """
    tensors = _floats(state_dict)
    if arch is None:
        ranks = {len(s) for n, s, _ in tensors if n.endswith(".weight")}
        if any(n == "patch_embed.proj.weight" for n, _, _ in tensors):
            raise ValueError("a vision transformer: say how many heads with arch='vit_DxWhH' (or 'vit_tiny')")
        if tensors and ranks == {2} and all(
            (n.endswith(".weight") and len(s) == 2) or (n.endswith(".bias") and len(s) == 1)
            for n, s, _ in tensors
        ):
            arch = "mlp"
        elif ranks == {2, 3}:
            arch = "cnn1d"
        else:
            raise ValueError(
                "cannot tell the architecture from the names and shapes; say arch= "
                "('mlp', 'cnn1d', 'conv2', 'vgg16', 'vit_tiny', 'vit_DxWhH', …)"
            )
    if input_shape is None and arch != "mlp":
        raise ValueError(f"arch {arch!r} needs input_shape (one example's shape)")
    if input_shape is None:
        weights = sorted(
            (t for t in tensors if t[0].endswith(".weight") and len(t[1]) == 2),
            key=lambda t: _natural(t[0]),
        )
        if not weights:
            raise ValueError("the state dict holds no [outputs, inputs] weight to infer input_shape from")
        input_shape = (weights[0][1][1],)
    shape = tuple(int(d) for d in input_shape)
    shape = (1,) * (3 - len(shape)) + shape if len(shape) <= 3 else None
    if shape is None:
        raise ValueError(f"input_shape {input_shape} has more than 3 dimensions")
    native = _native.compact(tensors, None if masks is None else _masks(masks), arch, list(shape))
    return SparseModel(native)


def _natural(name: str):
    """A sort key where the numbers in a name compare as numbers (`fc10` after `fc9`)."""
    import re

    return [(int(p) if p.isdigit() else p) for p in re.split(r"(\d+)", name)]
