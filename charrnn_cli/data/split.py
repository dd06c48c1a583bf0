"""The held-out split: the last part of a corpus's ids, one contiguous piece, scored and never
trained on. Torch-free (the job's size checks use it before torch is imported)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def split(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Training ids and the held-out tail: the last `val_fraction`, one contiguous piece."""
    n_val = max(2, int(len(ids) * val_fraction))
    return ids[:-n_val], ids[-n_val:]
