"""One compact ``key=value`` line per event on standard output."""

from __future__ import annotations

import sys
from typing import TextIO

import numpy as np

from runtime.sinks.base import Sink


def format_event(event: dict) -> str:
    """``type=defect_start time=... frame_index=120 label=crack peak_score=0.973 ...`` in event order."""
    parts = []
    for key, value in event.items():
        if isinstance(value, float | np.floating):
            value = f"{float(value):.3f}"
        parts.append(f"{key}={value}")
    return " ".join(parts)


class StdoutSink(Sink):
    """Prints each event; the stream is looked up per call so redirection (and pytest) work."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream

    def handle(self, event: dict, frame: np.ndarray | None) -> None:
        stream = self._stream or sys.stdout
        stream.write(format_event(event) + "\n")
        stream.flush()
