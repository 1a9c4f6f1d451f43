"""The one piece of arithmetic ``lottery.torch.ExactMask`` does, free of torch so that it is
tested without it: multiply every tensor of a pruned weight's shape by its 0/1 mask."""


def zero_masked(tensors, keep) -> None:
    """Multiplies each tensor in ``tensors`` of ``keep``'s shape by ``keep``, in place (torch
    tensors and numpy arrays alike); ``None`` entries and other shapes (an optimizer's step
    counter) are left alone."""
    for t in tensors:
        if t is not None and tuple(t.shape) == tuple(keep.shape):
            t *= keep
