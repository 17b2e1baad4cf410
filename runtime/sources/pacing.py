"""Real-time pacing for file replay (``--realtime``): deliver frame *i* at ``t0 + i / fps``."""

from __future__ import annotations

import threading
import time


class Pacer:
    """Sleeps until each frame is due; never drops frames.

    When the consumer falls behind, the schedule is re-anchored instead of bursting through the
    backlog, so replay behaves like a camera that kept running at its own rate.
    """

    def __init__(self, fps: float | None, stop: threading.Event):
        self.period = 1.0 / fps if fps and fps > 0 else 0.0
        self._stop = stop
        self._t0: float | None = None
        self._n = 0

    def wait(self) -> None:
        """Block until the next frame is due (returns early when ``stop`` is set)."""
        if self.period <= 0:
            return
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + self._n * self.period
        if now > due + self.period:
            self._t0 = now - self._n * self.period
        elif due > now:
            self._stop.wait(due - now)
        self._n += 1
