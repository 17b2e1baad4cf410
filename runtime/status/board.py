"""What the status page shows, kept by the frame loop's thread and read by the HTTP server's.

The loop pays almost nothing for it: per frame, a clock read and a histogram observation; the
overlay frame is drawn at most ``frame_every`` seconds apart and JPEG-encoded only when a browser
asks. Everything read here is the runtime's own state; nothing on the page changes the line.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from runtime.overlay import draw_overlay
from runtime.sinks.base import Sink
from runtime.sources import as_bgr

LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class HealthLimits:
    """``/healthz`` turns unhealthy past these (seconds)."""

    stall_s: float = 10.0  # no frame decided for this long: camera gone or loop stuck
    backlog_s: float = 300.0  # a remote sink's oldest undelivered event is older than this


class StatusBoard:
    """Latest overlay frame, last defect snapshots, a latency histogram and live readers of the
    loop's, source's and sinks' counters (``attach``)."""

    def __init__(self, limits: HealthLimits | None = None, *, frame_every: float = 0.5, keep: int = 8,
                 clock=time.monotonic):
        self.limits = limits or HealthLimits()
        self.frame_every, self._clock = frame_every, clock
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._frame_at = -1e9
        self.last_frame_at: float | None = None
        self.started = clock()
        self.snapshots: deque = deque(maxlen=keep)  # (event, BGR image) of recent defect_start events
        self.events_by: dict[tuple[str, str], int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.latency_sum = 0.0
        self.loop = self.source = self.dispatcher = None
        self.info: dict = {}

    def attach(self, loop, source, dispatcher, info: dict) -> None:
        """The objects whose counters the page and ``/metrics`` read (at request time)."""
        self.loop, self.source, self.dispatcher, self.info = loop, source, dispatcher, dict(info)

    # -- called by the frame loop's thread ------------------------------------------------
    def frame(self, image: np.ndarray, decision) -> None:
        """Note one decided frame; keep an overlay copy now and then."""
        now = self._clock()
        status = self.loop.status if self.loop is not None else None
        latency = (status.last_latency_ms or 0.0) / 1e3 if status else 0.0
        i = next((k for k, edge in enumerate(LATENCY_BUCKETS_S) if latency <= edge), len(LATENCY_BUCKETS_S))
        with self._lock:
            self.last_frame_at = now
            self.buckets[i] += 1
            self.latency_sum += latency
        if decision is not None and now - self._frame_at >= self.frame_every:
            self._frame_at = now
            self._frame = draw_overlay(as_bgr(image), decision.label, decision.score, decision.flagged,
                                       status.recent_fps if status else None,
                                       status.last_latency_ms if status else None,
                                       status.defect_active if status else False)

    # -- called by the sink lane and the HTTP threads -------------------------------------
    def event(self, event: dict, frame: np.ndarray | None) -> None:
        """Count an event by type and class; keep the snapshot of a defect start."""
        key = (str(event.get("type", "?")), str(event.get("label", "?")))
        with self._lock:
            self.events_by[key] = self.events_by.get(key, 0) + 1
            if frame is not None:
                self.snapshots.append((dict(event), frame))

    def latency_histogram(self) -> tuple[list[int], float]:
        """(count per bucket of :data:`LATENCY_BUCKETS_S` plus the overflow, sum of seconds)."""
        with self._lock:
            return list(self.buckets), self.latency_sum

    def latest_frame(self) -> np.ndarray | None:
        return self._frame

    def health(self) -> tuple[bool, list[str]]:
        """(healthy, reasons it is not)."""
        reasons = []
        now = self._clock()
        last = self.last_frame_at if self.last_frame_at is not None else self.started
        if now - last > self.limits.stall_s:
            reasons.append(f"no frame for {now - last:.0f} s (limit {self.limits.stall_s:g} s)")
        for name, s in self.sink_stats().items():
            age = s.get("oldest_pending_s") if isinstance(s, dict) else None
            if age is not None and age > self.limits.backlog_s:
                reasons.append(f"{name}: oldest undelivered event {age:.0f} s old "
                               f"(limit {self.limits.backlog_s:g} s)")
        return not reasons, reasons

    def sink_stats(self) -> dict:
        return dict(getattr(self.dispatcher, "stats", {}) or {})

    def source_stats(self) -> dict:
        return dict(getattr(self.source, "stats", {}) or {})

    def snapshot(self) -> dict:
        """The page's figures as JSON (also served at ``/status.json``)."""
        loop = self.loop
        stats = loop.stats if loop is not None else None
        summary = loop.summary() if loop is not None else {}
        healthy, reasons = self.health()
        with self._lock:
            events = {f"{t}:{label}": n for (t, label), n in sorted(self.events_by.items())}
            recent = [{k: e.get(k) for k in ("id", "type", "time", "label", "peak_score", "score", "part_id",
                                             "frame_index") if k in e}
                      for e, _ in reversed(self.snapshots)]
        return {"healthy": healthy, "problems": reasons, "info": self.info,
                "frames": stats.frames if stats else 0, "events": stats.events if stats else 0,
                "flagged_frames": stats.flagged_frames if stats else 0,
                "fps": stats.recent_fps if stats else None, "latency_ms": summary.get("latency_ms"),
                "events_by_type_and_class": events, "recent_defects": recent, "parts": summary.get("parts"),
                "source": self.source_stats(), "sinks": self.sink_stats()}


class StatusSink(Sink):
    """Feeds events and their snapshots to a :class:`StatusBoard` (a local, lossy-queue sink)."""

    name = "status-page"

    def __init__(self, board: StatusBoard):
        self.board = board

    def handle(self, event: dict, frame: np.ndarray | None) -> None:
        self.board.event(event, frame)
