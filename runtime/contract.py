"""The input contract: the one description of the pixels a model expects.

It travels with every artifact (``bundle.json`` and each file's own metadata) so that training,
the export gate and the device all feed the model the same pixels by construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2

# Names in the contract are portable strings; these are their OpenCV flags.
INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "bicubic": cv2.INTER_CUBIC,
}


@dataclass(frozen=True)
class InputContract:
    """What a model takes: an RGB image of ``height`` x ``width``, values 0..255.

    Normalization lives inside the model, so the value range is the raw 8-bit range.
    ``roi`` is an optional crop applied before resizing, as fractions of the frame
    ``(x0, y0, x1, y1)``: a camera sees more than the part, the model only the part.
    """

    height: int
    width: int
    color_order: str = "RGB"
    value_range: tuple[float, float] = (0.0, 255.0)
    interpolation: str = "area"
    roi: tuple[float, float, float, float] | None = None
    layout: str = "NHWC"
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"input contract: interpolation must be one of {sorted(INTERPOLATIONS)}, "
                f"got {self.interpolation!r}"
            )
        if self.color_order != "RGB":
            raise ValueError(f"input contract: only RGB models are supported, got {self.color_order!r}")
        if self.roi is not None:
            x0, y0, x1, y1 = self.roi
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise ValueError(
                    f"input contract: roi must be fractions 0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1; "
                    f"got {self.roi}"
                )

    @property
    def cv2_interpolation(self) -> int:
        """The OpenCV flag for this contract's resize."""
        return INTERPOLATIONS[self.interpolation]

    def to_dict(self) -> dict:
        """A JSON-ready dict (the form stored in bundle.json and artifact metadata)."""
        d = asdict(self)
        d["value_range"] = list(self.value_range)
        d["roi"] = list(self.roi) if self.roi is not None else None
        if not d["extra"]:
            d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> InputContract:
        """Inverse of :meth:`to_dict`; unknown keys are an error, not silently dropped."""
        known = {"height", "width", "color_order", "value_range", "interpolation", "roi", "layout", "extra"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"input contract: unknown keys {sorted(unknown)}; expected {sorted(known)}")
        kw = dict(d)
        kw["value_range"] = tuple(kw.get("value_range", (0.0, 255.0)))
        if kw.get("roi") is not None:
            kw["roi"] = tuple(kw["roi"])
        return cls(**kw)
