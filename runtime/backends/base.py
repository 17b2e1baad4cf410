"""The backend interface: one inference engine running one artifact."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class Backend(ABC):
    """Runs one model file. ``run`` takes RGB uint8 images, returns float32 probabilities.

    Quantized inputs and outputs are (de)quantized inside, with the tensor's own scale and
    zero point, so callers always see pixels in and probabilities out.
    """

    name: str = "base"

    def __init__(self, path: str | Path, threads: int | None = None, **options):
        self.path = Path(path)
        self.threads = threads
        self.options = options

    @abstractmethod
    def run_one(self, image: np.ndarray) -> np.ndarray:
        """One ``HxWx3`` uint8 RGB image -> ``(num_classes,)`` float32 probabilities."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        """``NxHxWx3`` uint8 RGB images -> ``(N, num_classes)`` float32 probabilities."""
        if batch.ndim == 3:
            batch = batch[None]
        return np.stack([self.run_one(img) for img in batch]).astype(np.float32, copy=False)

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, int]:
        """(height, width) the model takes."""

    def close(self) -> None:
        """Release the engine (idempotent)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> dict:
        """Engine name, version and settings, for logs and benchmark results."""
        return {"backend": self.name, "threads": self.threads, "path": str(self.path)}
