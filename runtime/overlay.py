"""Optional live window: the camera frame with label, score, FPS and latency drawn on it.

Boards on the line usually run headless; the window is for setting up the camera. PyPI's
``opencv-python-headless`` has no GUI at all, so the window is only used where a display exists
and the OpenCV build has a GUI backend.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from runtime.errors import EdgeFlagError

_RED, _GREEN, _WHITE, _BLACK = (0, 0, 255), (0, 170, 0), (255, 255, 255), (0, 0, 0)
_QUIT_KEYS = {ord("q"), 27}  # q or Esc closes the window and stops the run


def gui_available() -> bool:
    """True when this OpenCV build has a GUI backend (the PyPI headless wheel has none)."""
    info = cv2.getBuildInformation()
    for line in info.splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "NO", "")
    return False


def display_available() -> bool:
    """True when a window can be opened: a display is set and OpenCV has a GUI."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and gui_available()


def draw_overlay(frame: np.ndarray, label: str, score: float, flagged: bool, fps: float | None,
                 latency_ms: float | None, active: bool) -> np.ndarray:
    """A copy of ``frame`` (BGR) with the verdict and live figures drawn in the top-left corner."""
    out = frame.copy()
    lines = [(f"{'DEFECT' if flagged else 'ok'}: {label} {score:.2f}", _RED if flagged else _GREEN),
             (f"{fps:.1f} fps" if fps else "- fps", _WHITE),
             (f"{latency_ms:.1f} ms" if latency_ms is not None else "- ms", _WHITE)]
    scale, thick = _text_size([t for t, _ in lines], out.shape[1])
    y = 0
    for text, color in lines:
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        y += h + base + 6
        cv2.rectangle(out, (4, y - h - base - 2), (12 + w, y + 2), _BLACK, -1)
        cv2.putText(out, text, (8, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)
    if active:  # an open defect event: frame the picture in red
        cv2.rectangle(out, (0, 0), (out.shape[1] - 1, out.shape[0] - 1), _RED, 2 * thick)
    return out


def _text_size(lines: list[str], width: int) -> tuple[float, int]:
    """Font scale and stroke: readable on a large frame, never wider than a small one (96 px)."""
    scale = max(0.4, width / 900)
    for _ in range(4):  # text width is not linear in the scale (the stroke): measure again
        thick = max(1, int(round(scale * 2)))
        widest = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] for t in lines)
        if widest + 16 <= width:  # the boxes span 4 .. 12 + text width
            break
        scale *= (width - 16) / widest
    return scale, thick


class Window:
    """An OpenCV window; :meth:`show` returns False once the user pressed q or Esc."""

    def __init__(self, title: str = "edgeflag"):
        if not gui_available():
            raise EdgeFlagError("--show needs an OpenCV build with a GUI, but this one has none (the "
                                "PyPI opencv-python-headless wheel). Fix: run headless, or install "
                                "opencv-python (or the system OpenCV) in place of the headless wheel")
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def show(self, image: np.ndarray) -> bool:
        """Display ``image``; False when the user asked to quit."""
        cv2.imshow(self.title, image)
        return (cv2.waitKey(1) & 0xFF) not in _QUIT_KEYS

    def close(self) -> None:
        """Close the window (idempotent)."""
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
