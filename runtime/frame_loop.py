"""The per-frame work: one camera frame in, a decision out, debounced defect events emitted.

Per frame: ``prepare_bgr`` (the bundle's input contract) -> ``backend.run_one`` -> the bundle's
per-class thresholds (:class:`runtime.decision.Decider`) -> k-of-n debouncing -> ``defect_start``
/ ``defect_end`` events handed to ``emit`` (the sinks' bounded, non-blocking dispatcher).

Line mode (``--parts pitch:N`` / ``presence`` / ``trigger:...``): a part tracker of
:mod:`runtime.parts` takes the debouncer's place and emits one ``part`` event per part instead;
each defective part is handed straight to the reject output (:mod:`runtime.reject`), if any, so
its pulse is timed by the runtime and never waits on a sink's queue.

Snapshots: a ``defect_start`` carries the frame with the highest defect score among the frames
that triggered it (the k..n frames of the debouncing window); its file name is put in the event
(``"snapshot"``) before it is emitted, so the JSONL log records where the picture is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from runtime.contract import InputContract
from runtime.debounce import DefectEvent, KofN
from runtime.decision import Decider, Decision
from runtime.parts import PartEvent, drain, part_record
from runtime.preprocess import prepare_bgr
from runtime.sources.base import as_bgr
from runtime.stats import RunStats

Emit = Callable[[dict, "np.ndarray | None"], None]


def now_iso() -> str:
    """Wall-clock time for events, ISO-8601 UTC with milliseconds."""
    now = datetime.now(timezone.utc)  # noqa: UP017 - Python 3.10 boards lack datetime.UTC
    return now.isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class LoopStatus:
    """What a driver may read of a running :class:`FrameLoop` (the overlay, the stop conditions)."""

    frames: int  # frames decided so far
    recent_fps: float | None
    last_latency_ms: float | None  # frame-to-decision, latest frame
    defect_active: bool  # the debouncer holds an open defect


class FrameLoop:
    """Per-frame work on an already-open engine; owns no I/O, so tests and benchmarks reuse it."""

    def __init__(self, engine, contract: InputContract, decider: Decider, debouncer: KofN,
                 emit: Emit, stats: RunStats, context: dict | None = None,
                 snapshot_path: Callable[[dict], str] | None = None, clock=None, reject=None):
        import time

        self.engine, self.contract, self.decider, self.debouncer = engine, contract, decider, debouncer
        self.emit, self.stats, self.context = emit, stats, dict(context or {})
        self.snapshot_path, self.reject = snapshot_path, reject
        self.clock = clock or time.monotonic
        self.last: Decision | None = None
        self.last_index = -1

    def decide(self, image: np.ndarray) -> Decision:
        """prepare -> inference -> thresholds for one BGR frame (no debouncing, no events)."""
        return self.decider.decide(self.engine.run_one(prepare_bgr(image, self.contract)))

    def process(self, frame) -> Decision | None:
        """Decide one :class:`runtime.sources.Frame` and emit any event; None if it was unusable."""
        began = self.clock()
        image = as_bgr(frame.image)  # the one place frames become BGR, whatever source made them
        if image is None:
            self.stats.corrupt += 1
            return None
        decision = self.decide(image)
        self.stats.record(frame.captured, began, self.clock(), decision.flagged)
        self.last, self.last_index = decision, frame.index
        event = self.debouncer.update(decision.flagged, decision.label, decision.score, frame.index,
                                      payload=(image, frame.name), captured=frame.captured)
        self._emit_all(event)
        return decision

    def _emit_all(self, event) -> None:
        if event is not None:
            self._emit(event)
            for extra in drain(self.debouncer):
                self._emit(extra)

    @property
    def status(self) -> LoopStatus:
        """A read-only snapshot for the driver, so it never reaches into stats or the debouncer."""
        return LoopStatus(frames=self.stats.frames, recent_fps=self.stats.recent_fps,
                          last_latency_ms=self.stats.last_latency_ms, defect_active=self.debouncer.active)

    def stats_line(self, io: dict) -> str:
        """The periodic stats line, with the source's and sinks' I/O counters ``io``."""
        return self.stats.line(io)

    def summary(self) -> dict:
        """The run's totals and latency percentiles (see :meth:`runtime.stats.RunStats.summary`)."""
        return self.stats.summary()

    def finish(self) -> None:
        """End of the run: the clock stops (shutdown is not frame processing), and an open defect
        is closed with a ``defect_end`` on the last frame."""
        self.stats.stop()
        self._emit_all(self.debouncer.finish(self.last_index))

    def _emit(self, event: DefectEvent | PartEvent) -> None:
        if event.kind == "part":
            self._emit_part(event)
            return
        record = event_record(event, self.context)
        picture = self._snapshot(record, event.payload) if event.kind == "start" else None
        self.stats.events += 1
        self.emit(record, picture)

    def _snapshot(self, record: dict, payload) -> np.ndarray | None:
        """The event's picture (its worst frame), named in ``record`` before it is emitted."""
        if payload is None:
            return None
        picture, name = payload
        if name:
            record["peak_frame_name"] = name
        if self.snapshot_path is not None:
            record["snapshot"] = self.snapshot_path(record)
        return picture

    def _emit_part(self, event: PartEvent) -> None:
        # Every part is an event (ok ones too: the count is the production record); only a
        # defective part's worst frame becomes a snapshot.
        record = {**part_record(event), "time": now_iso(), **self.context}
        picture = None
        if event.verdict == "defect":
            if self.reject is not None:
                target = self.reject.schedule(
                    event.part_id, event.reference if event.reference is not None else self.clock())
                record.update(self.reject.until(target))  # reject_in_ms, or reject_in_pulses (encoder)
            picture = self._snapshot(record, event.payload)
        self.stats.record_part(event.verdict, event.label, event.complete, event.part_id)
        self.stats.events += 1
        self.emit(record, picture)


def event_record(event: DefectEvent, context: dict) -> dict:
    """The JSON event: type, time, frame index, class, peak score, frame count (+ context)."""
    record = {"type": f"defect_{event.kind}", "time": now_iso(), "frame_index": event.frame_index,
              "label": event.label, "peak_score": round(event.peak_score, 4),
              "frame_count": event.frame_count, "first_frame_index": event.first_frame_index,
              "peak_frame_index": event.peak_frame_index}
    if event.kind == "end":
        record["last_frame_index"] = event.last_frame_index
    record.update(context)
    return record
