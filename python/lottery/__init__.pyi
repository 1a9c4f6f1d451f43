from typing import Dict, Iterable, Mapping, Optional, Tuple

import numpy as np

Masks = Dict[str, np.ndarray]

def prune(
    state_dict: Mapping[str, object],
    sparsity: float = 0.9,
    scope: str = "layerwise",
    criterion: str = "magnitude",
    include: Optional[Iterable[str]] = None,
    exclude: Optional[Iterable[str]] = None,
    *,
    seed: int = 0,
    output_layer: Optional[str] = None,
    output_sparsity: Optional[float] = None,
    init: Optional[Mapping[str, object]] = None,
    mask: Optional[Mapping[str, object]] = None,
) -> Masks: ...
def apply(state_dict: Mapping[str, object], masks: Mapping[str, object]) -> Dict[str, np.ndarray]: ...
def sparsity(
    state_dict: Mapping[str, object], masks: Optional[Mapping[str, object]] = None
) -> Dict[str, Tuple[int, int]]: ...

class SparseModel:
    @classmethod
    def load(cls, path: object) -> SparseModel: ...
    def save(self, path: object) -> None: ...
    def predict(self, x: object) -> np.ndarray: ...
    def __call__(self, x: object) -> np.ndarray: ...
    @property
    def live_weights(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def input_shape(self) -> Tuple[int, int, int]: ...
    @property
    def outputs(self) -> int: ...

def compact(
    state_dict: Mapping[str, object],
    masks: Optional[Mapping[str, object]] = None,
    arch: Optional[str] = None,
    input_shape: Optional[Tuple[int, ...]] = None,
) -> SparseModel: ...
