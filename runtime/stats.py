"""Run statistics: FPS, frame-to-decision latency percentiles, drops, events and (line mode) parts.

Latency is measured from ``Frame.captured`` (when the source got the frame) to the moment the
decision is known, so for a live camera it includes the time the frame waited in the reader.
Percentiles come from a bounded window of recent frames: constant memory on a run of weeks.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from runtime.counters import ProductionCounters


@dataclass
class _Interval:
    """Counters since the last periodic stats line."""

    start: float
    frames: int = 0
    latencies: list[float] = field(default_factory=list)


class RunStats:
    """Counters of one run. ``record`` per decided frame, ``line`` for the periodic stats line."""

    def __init__(self, window: int = 2048, clock=time.monotonic, counters: ProductionCounters | None = None):
        self._clock = clock
        self.counters = counters  # line mode: parts by verdict (persisted when it has a path)
        self.started = clock()
        self.frames = 0  # frames decided
        self.corrupt = 0  # frames the loop skipped as unusable (the source counts its own too)
        self.events = 0
        self.flagged_frames = 0
        self._latency = deque(maxlen=window)  # seconds, frame captured -> decision
        self._compute = deque(maxlen=window)  # seconds, prepare + inference + decision
        self._interval = _Interval(self.started)
        self._recent = deque(maxlen=30)  # decision times, for the live FPS in the window
        self.ended: float | None = None

    def record(self, captured: float, began: float, decided: float, flagged: bool) -> None:
        """One decided frame: when it was captured, when processing began, when it was decided."""
        self.frames += 1
        self.flagged_frames += int(flagged)
        self._latency.append(decided - captured)
        self._compute.append(decided - began)
        self._interval.frames += 1
        self._interval.latencies.append(decided - captured)
        self._recent.append(decided)

    def record_part(self, verdict: str, label: str, complete: bool = True,
                    part_id: int | None = None) -> None:
        """One part's verdict (line mode); counted from then on even if no counters were given."""
        if self.counters is None:
            self.counters = ProductionCounters()
        self.counters.record(verdict, label, complete, part_id)

    def stop(self) -> None:
        """Freeze the run's duration (shutdown and sink flushing are not frame processing)."""
        if self.ended is None:
            self.ended = self._clock()

    @property
    def last_latency_ms(self) -> float | None:
        """Frame-to-decision latency of the latest frame."""
        return self._latency[-1] * 1e3 if self._latency else None

    @property
    def recent_fps(self) -> float | None:
        """Decisions per second over the latest few frames."""
        if len(self._recent) < 2:
            return None
        return (len(self._recent) - 1) / max(self._recent[-1] - self._recent[0], 1e-9)

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (until :meth:`stop`)."""
        return (self.ended if self.ended is not None else self._clock()) - self.started

    @staticmethod
    def _pct_ms(samples, q: float) -> float | None:
        return float(np.percentile(np.fromiter(samples, float), q) * 1e3) if samples else None

    def line(self, extra: dict | None = None) -> str:
        """The periodic stats line; resets the interval counters (FPS is over the interval)."""
        now = self._clock()
        iv = self._interval
        fps = iv.frames / max(now - iv.start, 1e-9)
        p50, p95 = self._pct_ms(iv.latencies, 50), self._pct_ms(iv.latencies, 95)
        self._interval = _Interval(now)
        parts = [f"frames={self.frames}", f"fps={fps:.1f}",
                 f"latency_ms p50={_fmt(p50)} p95={_fmt(p95)}",
                 f"events={self.events}", f"flagged_frames={self.flagged_frames}",
                 f"corrupt={self.corrupt}"]
        if self.counters is not None:
            parts.append(self.counters.line())
        parts += [f"{k}={v}" for k, v in (extra or {}).items()]
        return "[stats] " + " ".join(parts)

    def summary(self) -> dict:
        """Totals and percentiles over the run (latency over the last ``window`` frames)."""
        elapsed = self.elapsed
        counts = {"parts": self.counters.to_dict()} if self.counters is not None else {}
        return {
            "frames": self.frames, "seconds": round(elapsed, 3),
            "fps": round(self.frames / elapsed, 2) if elapsed > 0 else None,
            "latency_ms": {"p50": self._pct_ms(self._latency, 50), "p95": self._pct_ms(self._latency, 95)},
            "compute_ms": {"p50": self._pct_ms(self._compute, 50), "p95": self._pct_ms(self._compute, 95)},
            "events": self.events, "flagged_frames": self.flagged_frames, "corrupt_skipped": self.corrupt,
            **counts,
        }


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.1f}"
