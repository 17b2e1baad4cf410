"""Is a part at the inspection line? A software photo-eye on a down-scaled frame, with hysteresis.

A real photo-eye sees one line across the belt; this one does the same on the camera's picture, so
parts closer together than the ROI is wide are still told apart. Per frame: the ROI, grey, sampled
to ``width`` x ``across`` pixels along and across the direction of travel (a 640x480 frame becomes
160x40, a small fraction of the model's cost). The first ``learn_frames`` frames, with the belt
empty, give the background (their median). A pixel is *occupied* when it differs from the background
by more than ``diff_threshold`` grey levels once the frame's global brightness shift is taken out
(the median difference over the ROI: lighting that drifts moves every pixel, a part only its own).
The *profile* is, for each position along the travel direction, the share of the belt's width that
is occupied; the *occupancy* is the profile at the line (the middle of the ROI).

* A part starts after ``enter_frames`` frames at occupancy >= ``enter``, and ends after
  ``leave_frames`` frames at <= ``leave``: one noisy frame neither opens nor splits a part.
* Parts that touch never leave the line empty, but their outline has a *waist* where they meet: a
  local minimum of the profile below ``neck`` times the smaller of the two maxima beside it. The
  part on the line is the stretch between the waists around it; when a waist crosses the line, the
  next part has taken its place (the stretch's downstream end jumps back by a part's length). This
  is read off each frame's picture, not off the timing, so it holds at any belt speed. Round or
  chamfered parts back-to-back are counted one by one; square-edged parts pressed flat against
  each other have no waist and are one part to any camera — give those a gap, or a trigger.
* The background follows the belt where nothing is on it (a masked running average of the
  difference after the global shift, ``refresh`` per frame), so dust and shadows do not accumulate.

Limits: a part whose own outline has a waist deeper than ``neck`` (an hourglass) is split; a part
covering more than half the ROI makes the median shift its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PresenceSettings:
    """Thresholds of :class:`PresenceDetector` (shares of the belt width, grey levels, frames)."""

    width: int = 160  # pixels along the travel direction of the down-scaled ROI
    across: int = 40  # pixels across the belt (a part's outline needs less there: a third of the cost)
    axis: str = "x"  # direction of travel in the picture: "x" (left-right) or "y" (top-bottom)
    reverse: bool = False  # parts travel right-to-left (or bottom-to-top)
    learn_frames: int = 8
    diff_threshold: float = 25.0
    enter: float = 0.05
    leave: float = 0.02
    enter_frames: int = 2
    leave_frames: int = 2
    neck: float = 0.35
    refresh: float = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.leave < self.enter <= 1:
            raise ValueError(f"presence: need 0 <= leave < enter <= 1, got leave={self.leave}, "
                             f"enter={self.enter}")
        if min(self.across, self.learn_frames, self.enter_frames, self.leave_frames) < 1 or self.width < 16:
            raise ValueError("presence: need width >= 16, and across, learn_frames, enter_frames and "
                             "leave_frames >= 1")
        if self.axis not in ("x", "y") or not 0 < self.neck < 1:
            raise ValueError(f"presence: need axis x or y and 0 < neck < 1; got {self.axis!r}, {self.neck}")


class PresenceDetector:
    """Feed every frame to :meth:`update`; it says whether a part is on the line, and
    :attr:`started` whether this frame began a new one (after a gap, or at a waist)."""

    def __init__(self, settings: PresenceSettings | None = None,
                 roi: tuple[float, float, float, float] | None = None):
        self.s = settings or PresenceSettings()
        self.roi = roi
        self._learning: list[np.ndarray] = []
        self.background: np.ndarray | None = None
        self.present = False
        self.started = False
        self.occupancy = 0.0
        self.offset: float | None = None  # the part's middle from the line, share of the ROI
        self._run = 0  # consecutive frames agreeing with a change of state
        self._front: int | None = None  # downstream end of the stretch on the line, last frame

    def _small(self, bgr: np.ndarray) -> np.ndarray:
        if self.roi is not None:
            h, w = bgr.shape[:2]
            x0, y0, x1, y1 = self.roi
            bgr = bgr[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]
        size = (self.s.width, self.s.across)
        # Sample, then grey: nearest-neighbour reads a sixteenth of a 4x larger frame (an area filter
        # of the whole frame costs more than the detector is allowed), and the detector only needs
        # the outline, not the texture: sensor noise stays well under the difference threshold.
        small = cv2.resize(bgr, size if self.s.axis == "x" else size[::-1], interpolation=cv2.INTER_NEAREST)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        if self.s.axis == "y":
            grey = grey.T  # travel along the rows of the picture
        if self.s.reverse:
            grey = grey[:, ::-1]  # downstream is always to the right from here on
        return grey.astype(np.float32)

    @property
    def ready(self) -> bool:
        """True once the empty-belt background is learned."""
        return self.background is not None

    def update(self, bgr: np.ndarray) -> bool:
        """Presence in this frame (False while the background is still being learned)."""
        small = self._small(bgr)
        self.started = False
        if self.background is None:
            self._learning.append(small)
            if len(self._learning) >= self.s.learn_frames:
                self.background = np.median(np.stack(self._learning), axis=0)
                self._learning = []
            return False
        diff = small - self.background
        diff -= _median(diff[::4, ::4])  # a global lighting change is not a part (every 16th pixel)
        occupied = np.abs(diff) > self.s.diff_threshold
        profile = occupied.mean(axis=0)  # share of the belt's width, per position along the travel
        line = len(profile) // 2
        self.occupancy = float(profile[line - 1:line + 2].max())
        stretch = self._stretch(profile, line)
        # Where the part on the line sits: its middle's distance from the line, as a share of the
        # ROI (0 = centred, where the model sees it as in its training photos).
        self.offset = abs((stretch[0] + stretch[1]) / 2 - line) / len(profile) if stretch else None
        self._step(self.occupancy, stretch[1] if stretch else None)
        # Where no part covers it, the background learns local changes (dust, a shadow); the global
        # level stays out of it (the median takes that each frame), so places that parts keep covering
        # never fall out of step with the rest while the light drifts.
        diff *= ~occupied  # a multiply, not a boolean-index write: a third of the time
        self.background += self.s.refresh * diff
        return self.present

    def _stretch(self, profile: np.ndarray, line: int) -> tuple[int, int] | None:
        """(upstream, downstream) end of the part on the line: the waists around it, else its blob's
        ends; None when nothing is on the line."""
        above = profile > self.s.leave
        if not above[line]:
            return None
        lo = line - int(np.argmin(above[line::-1])) + 1 if not above[:line + 1].all() else 0
        hi = line + int(np.argmin(above[line:])) - 1 if not above[line:].all() else len(profile) - 1
        blob = profile[lo:hi + 1]
        at = line - lo
        # Waists: local minima below neck x the smaller of the highest points on either side.
        left = np.maximum.accumulate(blob)[:-2]  # max(blob[:x]) for x = 1 .. n-2
        right = np.maximum.accumulate(blob[::-1])[::-1][2:]  # max(blob[x+1:])
        mid = blob[1:-1]
        waists = (np.flatnonzero((mid <= blob[:-2]) & (mid <= blob[2:]) &
                                 (mid < self.s.neck * np.minimum(left, right))) + 1).tolist()
        back = max((x for x in waists if x < at), default=0)
        front = min((x for x in waists if x >= at), default=len(blob) - 1)
        return lo + back, lo + front

    def _step(self, occ: float, front: int | None) -> None:
        s = self.s
        previous = self._front  # the last frame's front that was on the line (a gap frame has none)
        if front is not None:
            self._front = front
        if not self.present:
            self._run = self._run + 1 if occ >= s.enter else 0
            if self._run >= s.enter_frames:
                self.present, self.started, self._run = True, True, 0
            return
        if occ <= s.leave:
            self._run += 1
            if self._run >= s.leave_frames:
                self.present, self._run = False, 0
            return
        self._run = 0
        # The front only moves downstream while one part crosses; a jump back means a waist crossed
        # the line and the part behind is now on it.
        if previous is not None and front is not None and front < previous - max(2, self.s.width // 40):
            self.started = True


def _median(values: np.ndarray) -> float:
    """The lower median: one partial sort, a third of ``np.median``'s time on the detector's 600
    samples (the level of a lighting shift needs no averaging of the two middle values)."""
    flat = values.ravel()
    k = (flat.size - 1) // 2
    return float(np.partition(flat, k)[k])
