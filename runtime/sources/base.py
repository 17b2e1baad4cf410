"""The frame-source interface: one base class, one file per implementation (Picamera2-style)."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import numpy as np

from runtime.errors import EdgeFlagError


class SourceError(EdgeFlagError):
    """A frame source cannot be opened (bad spec, missing device, missing library)."""


@dataclass
class Frame:
    """One captured frame.

    ``image`` is BGR uint8 ``HxWx3`` (OpenCV order). ``index`` is the frame's 0-based position in
    the stream as the source delivered it: for files the frame number, for folders the position in
    the sorted listing, for live sources the capture count (a gap means frames were dropped).
    ``captured`` is ``time.monotonic()`` when the frame was read, so ``age()`` is camera-to-now.
    """

    image: np.ndarray
    index: int
    captured: float
    name: str | None = None

    def age(self, now: float | None = None) -> float:
        """Seconds since capture (``now`` defaults to ``time.monotonic()``)."""
        return (time.monotonic() if now is None else now) - self.captured


def as_bgr(image: object) -> np.ndarray | None:
    """Normalise a captured image to ``HxWx3`` BGR uint8, or ``None`` if it is unusable.

    Drivers hand back empty arrays, greyscale or 4-channel frames after glitches; the loop only
    ever sees 3-channel BGR, and anything else is counted as a corrupt frame by the caller.
    """
    if not isinstance(image, np.ndarray) or image.size == 0 or image.dtype != np.uint8:
        return None
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    return None


class FrameSource(ABC):
    """A stream of :class:`Frame` objects; a context manager (``with open_source(s) as src``).

    ``live`` sources (cameras, streams) deliver only the newest frame; file sources deliver every
    frame in order. ``read()`` returns ``None`` at the end of the stream or after ``stop()``.
    """

    live: bool = False

    def __init__(self, description: str):
        self.description = description
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {"frames": 0, "corrupt_skipped": 0, "reconnects": 0,
                                        "dropped_stale": 0}

    @abstractmethod
    def open(self) -> None:
        """Acquire the device or file; raise :class:`SourceError` with the reason if impossible."""

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame (live: the newest unseen one, blocking until it comes), ``None`` at end."""

    def close(self) -> None:
        """Release the device or file (idempotent)."""
        self.stop()

    def stop(self) -> None:
        """Make ``read()`` return ``None`` promptly; safe from signal handlers and other threads."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    @property
    def stats(self) -> dict:
        """Counters: frames delivered, corrupt_skipped, reconnects, dropped_stale, and per-source extras."""
        with self._lock:
            return {"source": self.description, "live": self.live, **self._counts}

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self):
        while (frame := self.read()) is not None:
            yield frame

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"
