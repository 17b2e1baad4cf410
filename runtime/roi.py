"""A region of interest as fractions of the frame: parsing and checking, without OpenCV.

Kept apart from the input contract so that the camera program's settings (``--roi``) can check
a value without importing OpenCV (``runtime.camera --help`` stays instant).
"""

from __future__ import annotations


def check_roi(roi) -> tuple[float, float, float, float]:
    """``roi`` as a validated ``(x0, y0, x1, y1)`` tuple of fractions; a ValueError says how to fix it."""
    try:
        x0, y0, x1, y1 = (float(v) for v in roi)
    except (TypeError, ValueError):
        raise ValueError(f"roi must be four fractions x0,y0,x1,y1 of the frame, got {roi!r}; "
                         "e.g. 0.25,0,0.75,1 for the middle half") from None
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise ValueError(f"roi must be fractions 0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1; got {tuple(roi)}")
    return x0, y0, x1, y1


def parse_roi(text: str | list | tuple | None) -> tuple[float, float, float, float] | None:
    """An ROI from a flag or config value (``"x0,y0,x1,y1"`` or a list); None, "", "none", "full": none."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "none", "full")):
        return None
    parts = text.split(",") if isinstance(text, str) else text
    return check_roi(parts)
