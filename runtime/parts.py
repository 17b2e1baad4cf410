"""Line mode: one verdict per part instead of debounced frame windows.

``--parts`` says how a part is delimited:

* ``frames`` — no parts: continuous material, the k-of-n defect windows of :mod:`runtime.debounce`;
* ``pitch:N`` — an indexed line: every ``N`` frames are one part (frames ``0..N-1`` part 1, ...);
* ``presence`` — the runtime sees each part enter and leave the ROI (:mod:`runtime.presence`);
* ``trigger:...`` — an external signal (photo-eye, PLC) starts each part, and the next
  ``part_frames`` frames belong to it (:mod:`runtime.triggers`).

Per part, the frames that saw it are aggregated into one verdict: *defect* when at least
``part_k`` of them were flagged (1: the worst frame decides), with the class and score of its
highest-scoring flagged frame; else *ok*. One ``part`` event per part, ok parts included, carries
the part id, verdict, class, score, frame range and counts; the worst frame travels with it for the
snapshot. Two defective parts in a row are two events, whatever the gap between them. Each part
also carries its reference time (its trigger, else the capture of its first frame), from which the
reject output (:mod:`runtime.reject`) times its pulse.

The trackers have the debouncer's interface (``update``/``finish``/``active``), so the frame loop
drives either without knowing which.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and OpenCV load only when presence is used: --help stays instant on a Pi
    from runtime.presence import PresenceDetector, PresenceSettings

PART_MODES = ("frames", "pitch:N", "presence", "trigger:gpio:PIN", "trigger:udp:PORT", "trigger:stdin")
NOT_INSPECTED = "not_inspected"  # a triggered part that no frame saw: rejected, never passed unseen


@dataclass
class PartEvent:
    """One part's verdict (``kind`` is always ``"part"``)."""

    part_id: int
    verdict: str  # "defect" or "ok"
    label: str
    score: float
    first_frame_index: int
    last_frame_index: int
    frame_count: int
    flagged_frames: int
    peak_frame_index: int
    complete: bool = True  # False: the stream ended while the part was in view
    reference: float | None = None  # monotonic: trigger time, else capture of the first frame
    judged_frames: int = 0  # frames the verdict was taken over (presence: the central ones)
    payload: Any = field(default=None, repr=False)
    kind: str = "part"

    @property
    def frame_index(self) -> int:
        """The frame on which the verdict was decided (the part's last frame)."""
        return self.last_frame_index


class _Part:
    """The frames of one part so far; keeps only the worst frame's payload."""

    def __init__(self, part_id: int, reference: float | None = None):
        self.part_id, self.frames, self.flagged, self.reference = part_id, 0, 0, reference
        self.first = self.last = -1
        self.labels: Counter[str] = Counter()
        self.worst: tuple[bool, float, int, str, Any] | None = None  # flagged, score, index, label, payload
        self._worst_key: tuple[bool, float] | None = None

    def add(self, flagged: bool, label: str, score: float, index: int, payload: Any,
            captured: float | None = None) -> None:
        if self.frames == 0:
            self.first = index
            if self.reference is None:
                self.reference = captured
        self.frames, self.last = self.frames + 1, index
        self.flagged += bool(flagged)
        self.labels[label] += 1
        # Worst: a flagged frame beats any clean one; among flagged the highest score, among
        # clean ones the least confident (the frame closest to being flagged).
        key = (bool(flagged), score if flagged else -score)
        if self._worst_key is None or key > self._worst_key:
            self._worst_key, self.worst = key, (bool(flagged), score, index, label, payload)

    def verdict(self, k: int, complete: bool) -> PartEvent:
        if self.worst is None:  # triggered, never seen: fail safe
            return PartEvent(self.part_id, "defect", NOT_INSPECTED, 1.0, -1, -1, 0, 0, -1, False,
                             self.reference)
        flagged, score, index, label, payload = self.worst
        defect = self.flagged >= k
        if not defect:
            label = self.labels.most_common(1)[0][0]
        return PartEvent(self.part_id, "defect" if defect else "ok", label, score, self.first, self.last,
                         self.frames, self.flagged, index, complete, self.reference, self.frames,
                         payload)


class _Tracker:
    """What pitch and presence share: the open part, the verdict rule, the ids."""

    def __init__(self, part_k: int = 1, first_id: int = 1):
        if not isinstance(part_k, int) or part_k < 1:
            raise ValueError(f"parts: part_k must be an integer >= 1, got {part_k!r}")
        self.part_k, self.next_id = part_k, first_id
        self.part: _Part | None = None

    @property
    def active(self) -> bool:
        """A part is open and already holds a flagged frame."""
        return self.part is not None and self.part.flagged > 0

    def _open(self, reference: float | None = None) -> None:
        self.part, self.next_id = _Part(self.next_id, reference), self.next_id + 1

    def _close(self, complete: bool = True) -> PartEvent | None:
        part, self.part = self.part, None
        return part.verdict(self.part_k, complete) if part is not None and part.frames else None

    def close(self) -> None:
        """Release any input the tracker holds (trigger mode)."""

    def finish(self, last_index: int) -> PartEvent | None:
        """End of stream: the open part's verdict, marked incomplete."""
        return self._close(complete=False)


class PitchParts(_Tracker):
    """Every ``every`` frames are one part (an indexed line, one stop per station)."""

    def __init__(self, every: int, part_k: int = 1):
        super().__init__(part_k)
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"parts: pitch needs a whole number of frames >= 1, got {every!r}; e.g. pitch:8")
        if part_k > every:
            raise ValueError(f"parts: part_k={part_k} flagged frames can never happen in a pitch of {every}")
        self.every = every

    def update(self, flagged: bool, label: str, score: float, index: int, payload: Any = None,
               captured: float | None = None):
        """Add one frame; returns the part's verdict on its last frame, else None."""
        if self.part is None:
            self._open()
        self.part.add(flagged, label, score, index, payload, captured)
        return self._close() if self.part.frames >= self.every else None


class PresenceParts(_Tracker):
    """A part is the run of frames in which :class:`PresenceDetector` sees it on the inspection line.

    The verdict is taken over the part's *central* frames — those in which its middle is within
    ``central`` of the ROI's width from the line (the frame nearest, if none is), i.e. where the model
    sees it centred as in its training photos rather than entering or leaving the view — so a
    neighbour half in the picture does not decide for it. The part's frame range and count still
    cover every frame that saw it.
    """

    def __init__(self, detector: PresenceDetector | None = None, part_k: int = 1, central: float = 0.08,
                 max_frames: int = 256):
        super().__init__(part_k)
        if not 0 <= central <= 0.5:
            raise ValueError(f"parts: central must be in [0, 0.5] of the ROI width, got {central}")
        if detector is None:
            from runtime.presence import PresenceDetector

            detector = PresenceDetector()
        self.detector = detector
        self.central, self.max_frames = central, max_frames
        self._frames: list[tuple] = []  # (offset, flagged, label, score, index, payload, captured)

    @property
    def active(self) -> bool:
        """A part is on the line and one of its frames is flagged."""
        return any(f[1] for f in self._frames)

    def update(self, flagged: bool, label: str, score: float, index: int, payload: Any = None,
               captured: float | None = None):
        """Add one frame (``payload[0]`` is its BGR image); returns a verdict when a part has passed."""
        present = self.detector.update(payload[0])
        event = self._close() if self._frames and (not present or self.detector.started) else None
        if present:
            if len(self._frames) >= self.max_frames:  # a part that never leaves: keep the pictures bounded
                payload = None
            offset = self.detector.offset if self.detector.offset is not None else 1.0
            self._frames.append((offset, flagged, label, score, index, payload, captured))
        return event

    def _close(self, complete: bool = True) -> PartEvent | None:
        frames, self._frames = self._frames, []
        if not frames:
            return None
        limit = max(self.central, min(f[0] for f in frames))  # at least the most centred frame
        self._open(frames[0][6])
        for offset, flagged, label, score, index, payload, _ in frames:
            if offset <= limit:
                self.part.add(flagged, label, score, index, payload)
        event = super()._close(complete)
        event.first_frame_index, event.last_frame_index = frames[0][4], frames[-1][4]
        event.frame_count = len(frames)
        return event


class TriggerParts(_Tracker):
    """Each trigger starts a part; the next ``frames`` frames belong to it.

    A trigger that arrives while a part is still collecting frames closes that part early (the next
    part is already in front of the camera). Triggers with no frame between them give parts that no
    frame saw: those are rejected as ``not_inspected`` (a part passed unseen would be a part passed
    uninspected), and counted.
    """

    def __init__(self, trigger, frames: int, part_k: int = 1):
        super().__init__(part_k)
        check_trigger_frames(frames, part_k)
        self.trigger, self.frames = trigger, frames
        self.pending: list[PartEvent] = []

    def update(self, flagged: bool, label: str, score: float, index: int, payload: Any = None,
               captured: float | None = None):
        """Add one frame; returns a verdict when a part has its frames (or is cut short)."""
        for when in self.trigger.take():
            self._end_current()
            self._open(when)
        if self.part is None:
            return self._pop()
        self.part.add(flagged, label, score, index, payload, captured)
        if self.part.frames >= self.frames:
            self.pending.append(self._close())
        return self._pop()

    def _end_current(self) -> None:
        if self.part is not None:
            part, self.part = self.part, None
            self.pending.append(part.verdict(self.part_k, complete=part.frames >= self.frames))

    def _pop(self) -> PartEvent | None:
        # One event per frame through the debouncer interface; extras wait for the next frame
        # (more than one part per frame only happens when triggers outrun the camera).
        return self.pending.pop(0) if self.pending else None

    def drain(self) -> list[PartEvent]:
        """Verdicts still waiting (the loop takes them after each frame)."""
        out, self.pending = self.pending, []
        return out

    def finish(self, last_index: int) -> PartEvent | None:
        """End of stream: the open part (marked incomplete) after any waiting verdicts."""
        self._end_current()
        return self._pop()

    def close(self) -> None:
        self.trigger.close()


def check_trigger_frames(frames: int, part_k: int) -> None:
    """Raise unless ``frames`` per triggered part can hold ``part_k`` flagged ones."""
    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"parts: trigger mode needs part_frames >= 1, got {frames!r}; e.g. --part-frames 3")
    if part_k > frames:
        raise ValueError(f"parts: part_k={part_k} flagged frames can never happen in {frames} frames "
                         "per part; lower --part-k or raise --part-frames")


def check_spec(spec: str) -> str:
    """``spec`` if it names a mode (without opening any device or socket), else a ValueError."""
    if spec in ("frames", "presence") or spec.startswith("trigger:"):
        if spec.startswith("trigger:"):
            from runtime.triggers import check_trigger_spec

            check_trigger_spec(spec.split(":", 1)[1])
        return spec
    if spec.startswith("pitch:") and spec[6:].isdigit() and int(spec[6:]) >= 1:
        return spec
    raise ValueError(f"--parts must be one of {', '.join(PART_MODES)}, got {spec!r}; "
                     "e.g. --parts pitch:8 (8 frames per part), --parts presence, --parts trigger:gpio:27")


def make_tracker(spec: str, part_k: int = 1, roi: tuple[float, float, float, float] | None = None,
                 presence: PresenceSettings | None = None, part_frames: int = 3, trigger=None):
    """``pitch:N`` / ``presence`` / ``trigger:...`` -> a tracker; ``frames`` -> None (k-of-n debouncing).

    ``trigger`` is an open :class:`runtime.triggers.TriggerInput`; without it ``trigger:...``
    specs are opened here (so only a valid spec opens a device or a socket).
    """
    if check_spec(spec) == "frames":
        return None
    if spec.startswith("trigger:"):
        if trigger is None:  # checked before the device or socket is opened
            from runtime.triggers import open_trigger

            check_trigger_frames(part_frames, part_k)
            trigger = open_trigger(spec.split(":", 1)[1])
        return TriggerParts(trigger, part_frames, part_k)
    if spec == "presence":
        from runtime.presence import PresenceDetector

        return PresenceParts(PresenceDetector(presence, roi), part_k)
    return PitchParts(int(spec.split(":", 1)[1]), part_k)


def part_record(event: PartEvent) -> dict:
    """The JSON fields of a ``part`` event (time and context are added by the loop)."""
    return {"type": "part", "part_id": event.part_id, "verdict": event.verdict, "label": event.label,
            "score": round(event.score, 4), "frame_index": event.frame_index,
            "first_frame_index": event.first_frame_index, "last_frame_index": event.last_frame_index,
            "frame_count": event.frame_count, "judged_frames": event.judged_frames,
            "flagged_frames": event.flagged_frames,
            "peak_frame_index": event.peak_frame_index, "complete": event.complete}


def drain(tracker) -> list:
    """Events a tracker still holds after ``update`` returned one (trigger mode only)."""
    return tracker.drain() if hasattr(tracker, "drain") else []
