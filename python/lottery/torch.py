"""Exact masks in your own PyTorch training loop, and the lottery-ticket loop around it.

``ExactMask`` keeps every pruned weight exactly 0.0 through any ``torch.optim`` optimizer. Setting
weights to zero once is not enough: momentum, Adam's moment estimates and weight decay move a
zeroed weight again at the next step. So before each ``step`` the pruned entries of the
gradients are zeroed, and after it the pruned weights and every optimizer state entry of the
same shape (momentum buffers, ``exp_avg``, ``exp_avg_sq``…) are zeroed too::

    masks = lottery.prune(model.state_dict(), sparsity=0.9)
    with_mask = lottery.torch.ExactMask(model, masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    with_mask.attach(opt)          # hooks around opt.step(); your loop stays as it is

``imp`` runs iterative magnitude pruning with rewinding (Frankle & Carbin) around your own
training function. torch is imported when this module is, never by ``import lottery``.
"""

from __future__ import annotations

import copy
from typing import Callable, Dict, List, Mapping, Optional

import numpy as np
import torch

import lottery
from lottery._mask import zero_masked

__all__ = ["ExactMask", "imp", "zero_masked"]


class ExactMask:
    """Pruned weights of ``model`` kept at exactly 0.0.

    ``masks`` maps parameter names (as ``model.named_parameters()`` gives them) to 0/1 arrays of
    the parameter's shape — what ``lottery.prune`` returns. The weights are zeroed at once.
    """

    def __init__(self, model: torch.nn.Module, masks: Mapping):
        params = dict(model.named_parameters())
        unknown = [n for n in masks if n not in params]
        if unknown:
            raise ValueError(f"masks name no parameter of the model: {', '.join(unknown)}")
        self.keep: Dict[torch.nn.Parameter, torch.Tensor] = {}
        for name, m in masks.items():
            p = params[name]
            keep = torch.as_tensor(np.asarray(m), device=p.device).to(p.dtype)
            if tuple(keep.shape) != tuple(p.shape):
                raise ValueError(f"mask `{name}` has shape {tuple(keep.shape)}, the parameter {tuple(p.shape)}")
            self.keep[p] = keep
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        """Zeroes the pruned weights."""
        for p, keep in self.keep.items():
            p.mul_(keep)

    @torch.no_grad()
    def before_step(self) -> None:
        """Zeroes the gradients of pruned weights."""
        for p, keep in self.keep.items():
            if p.grad is not None:
                p.grad.mul_(keep)

    @torch.no_grad()
    def after_step(self, optimizer: Optional[torch.optim.Optimizer] = None) -> None:
        """Zeroes the pruned weights and, in ``optimizer``'s state, every entry of their shape."""
        for p, keep in self.keep.items():
            state = optimizer.state.get(p, {}) if optimizer is not None else {}
            zero_masked([p, *[v for v in state.values() if isinstance(v, torch.Tensor)]], keep)

    def attach(self, optimizer: torch.optim.Optimizer) -> "ExactMask":
        """Hooks ``before_step`` and ``after_step`` around every ``optimizer.step()``."""
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: self.before_step())
        optimizer.register_step_post_hook(lambda opt, args, kwargs: self.after_step(opt))
        return self


def imp(
    model: torch.nn.Module,
    train_fn: Callable[[torch.nn.Module, ExactMask], Optional[float]],
    levels: int = 5,
    rate: float = 0.2,
    rewind: str = "init",
    scope: str = "layerwise",
    include: Optional[List[str]] = None,
    exclude: Optional[List[str]] = None,
) -> List[dict]:
    """Iterative magnitude pruning: train, prune ``rate`` of what is left, rewind, train again.

    ``train_fn(model, mask)`` is your own training (it should ``mask.attach`` its optimizer, or
    call ``before_step``/``after_step``) and may return a score (say, test accuracy). Level 0
    trains the dense network. ``rewind="init"`` resets the surviving weights to their initial
    values before each level (the lottery-ticket experiment); ``"none"`` keeps training the
    pruned weights (fine-tuning). Returns one record per level: ``level``, ``sparsity``,
    ``score`` and ``masks``; the model ends holding the last level's trained ticket.
    """
    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1), not {rate}")
    if rewind not in ("init", "none"):
        raise ValueError(f"rewind must be 'init' or 'none', not {rewind!r}")
    initial = copy.deepcopy(model.state_dict())
    masks: Optional[Dict[str, np.ndarray]] = None
    records = []
    for level in range(levels + 1):
        if level > 0:
            target = 1 - (1 - rate) ** level
            state = {n: p for n, p in model.named_parameters()}
            masks = lottery.prune(state, sparsity=target, scope=scope, include=include,
                                  exclude=exclude, mask=masks)
            if rewind == "init":
                model.load_state_dict(initial)
        mask = ExactMask(model, masks or {})
        score = train_fn(model, mask)
        kept = lottery.sparsity(dict(model.named_parameters()), masks)["total"] if masks else None
        records.append({
            "level": level,
            "sparsity": 0.0 if kept is None else 1 - kept[0] / kept[1],
            "score": score,
            "masks": masks,
        })
    return records
