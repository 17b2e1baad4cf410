"""k-of-n debouncing: turn noisy per-frame verdicts into defect events.

A defect is *active* while at least ``k`` of the last ``n`` frames are flagged. The rising edge
of that condition is a ``defect_start``, the falling edge a ``defect_end``. So one noisy frame
does not trigger an event (``k > 1``), and a defect seen through a few noisy frames is not
missed or split in two (up to ``n - k`` unflagged frames inside the window are tolerated).

With ``k=3, n=5``: the third flagged frame among the last five starts the event; it ends on the
frame after which fewer than three of the last five are flagged (at most ``n - k + 1`` frames
after the last flagged one).

Events carry the frame with the highest score among the frames that triggered them (the
``payload`` passed to :meth:`KofN.update`, e.g. the camera frame for the snapshot), so a
snapshot is available the moment a defect starts, not only when it ends.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DefectEvent:
    """One debounced event. ``kind`` is ``"start"`` or ``"end"``.

    ``frame_index`` is the frame on which the edge was decided; ``first_frame_index`` the first
    flagged frame belonging to the event; ``peak_*`` describe the highest-scoring flagged frame
    so far; ``frame_count`` counts the flagged frames of the event so far.
    """

    kind: str
    frame_index: int
    label: str
    peak_score: float
    peak_frame_index: int
    first_frame_index: int
    last_frame_index: int
    frame_count: int
    payload: Any = field(default=None, repr=False)


@dataclass
class _Flagged:
    index: int
    label: str
    score: float
    payload: Any


class KofN:
    """The k-of-n debouncer. Feed it every frame's verdict in order with :meth:`update`."""

    def __init__(self, k: int = 3, n: int = 5):
        if not (isinstance(k, int) and isinstance(n, int)) or not 1 <= k <= n:
            raise ValueError(f"debounce: need integers 1 <= k <= n, got k={k!r}, n={n!r}. "
                             "Example: --k 3 --n 5 (3 flagged frames among the last 5 start an event)")
        self.k, self.n = k, n
        # The last n frames: a _Flagged entry for a flagged frame, None for a clean one.
        self._window: deque[_Flagged | None] = deque(maxlen=n)
        self._active: _Flagged | None = None  # peak frame of the open event
        self._first = self._last = self._count = 0
        self._labels: Counter[str] = Counter()

    @property
    def active(self) -> bool:
        """True while a defect event is open."""
        return self._active is not None

    def update(self, flagged: bool, label: str, score: float, frame_index: int,
               payload: Any = None, captured: float | None = None) -> DefectEvent | None:
        """Add one frame's verdict; return the event this frame triggers, if any.

        ``captured`` (the frame's capture time) is what the part trackers of :mod:`runtime.parts`
        take too; the debouncer does not need it."""
        entry = _Flagged(frame_index, label, float(score), payload) if flagged else None
        self._window.append(entry)
        hits = [e for e in self._window if e is not None]
        if self._active is None:
            if len(hits) >= self.k:
                return self._start(hits, frame_index)
            return None
        if entry is not None:
            self._absorb(entry)
        if len(hits) < self.k:
            return self._end(frame_index)
        return None

    def finish(self, frame_index: int) -> DefectEvent | None:
        """End of stream: close an open event (``defect_end`` on ``frame_index``), else None."""
        self._window.clear()
        return self._end(frame_index) if self._active is not None else None

    def _start(self, hits: list[_Flagged], frame_index: int) -> DefectEvent:
        self._labels = Counter(e.label for e in hits)
        self._active = max(hits, key=lambda e: e.score)
        self._first, self._last, self._count = hits[0].index, hits[-1].index, len(hits)
        return self._event("start", frame_index, self._active.payload)

    def _absorb(self, entry: _Flagged) -> None:
        self._labels[entry.label] += 1
        self._last, self._count = entry.index, self._count + 1
        if entry.score > self._active.score:
            self._active = entry

    def _end(self, frame_index: int) -> DefectEvent:
        event = self._event("end", frame_index, None)
        self._active, self._labels = None, Counter()
        # Frames of the closed event must not count towards the next one.
        self._window = deque((None for _ in self._window), maxlen=self.n)
        return event

    def _event(self, kind: str, frame_index: int, payload: Any) -> DefectEvent:
        # The event's class: the most frequent flagged class, ties broken by the peak frame's.
        top = max(self._labels.values())
        tied = {lab for lab, c in self._labels.items() if c == top}
        label = self._active.label if self._active.label in tied else sorted(tied)[0]
        return DefectEvent(kind, frame_index, label, self._active.score, self._active.index,
                           self._first, self._last, self._count, payload)
