"""The input contract: the one description of the pixels a model expects.

It travels with every artifact (``bundle.json`` and each file's own metadata) so that training,
the export gate and the device all feed the model the same pixels by construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from runtime.roi import check_roi

# Names in the contract are portable strings; runtime.preprocess turns them into pixels.
#   area          - OpenCV's area (box) filter in one step: the reference shrink, but slow at a
#                   non-integer factor (640x480 -> 224 px is 2.86x: ~1 ms, a third of a 224-px invoke)
#   area-bilinear - the area filter by whole factors (2x2 halvings: OpenCV's vectorised path), then
#                   bilinear for the factor below 2 that is left: every source pixel still counts, at
#                   about a tenth of the cost on a camera frame. An image with no whole factor to take
#                   (a photo near the model's size) gets the area filter itself. The default for new runs
#   bilinear, nearest, bicubic - one OpenCV call
INTERPOLATIONS = ("area", "area-bilinear", "bilinear", "nearest", "bicubic")
DEFAULT_INTERPOLATION = "area-bilinear"

# How an image whose aspect differs from the model's reaches the model's size:
#   stretch   - scale each axis on its own (the part's shape is squashed)
#   letterbox - scale to fit, keep the aspect, pad the rest with LETTERBOX_PAD (nothing is lost)
#   crop      - scale to cover, keep the aspect, cut the centre (the edges are lost)
RESIZE_MODES = ("stretch", "letterbox", "crop")
LETTERBOX_PAD = 114  # mid grey, the usual letterbox fill: no edge a defect detector could mistake

# Keys earlier bundles wrote that only ever held one value; accepted when they hold it.
_FIXED_LEGACY = {"layout": "NHWC", "value_range": [0.0, 255.0], "extra": {}}


@dataclass(frozen=True)
class InputContract:
    """What a model takes: an RGB uint8 image of ``height`` x ``width`` in NHWC, values 0..255.

    Normalization lives inside the model, so the pixels are the raw 8-bit range.
    ``roi`` is an optional crop applied before resizing, as fractions of the frame
    ``(x0, y0, x1, y1)``: a camera sees more than the part, the model only the part.
    ``resize`` says how an image of another aspect is brought to the model's size (RESIZE_MODES).
    """

    height: int
    width: int
    color_order: str = "RGB"
    interpolation: str = DEFAULT_INTERPOLATION
    roi: tuple[float, float, float, float] | None = None
    resize: str = "stretch"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"input contract: interpolation must be one of {list(INTERPOLATIONS)}, "
                f"got {self.interpolation!r}"
            )
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"input contract: resize must be one of {list(RESIZE_MODES)}, "
                             f"got {self.resize!r}")
        if self.color_order != "RGB":
            raise ValueError(f"input contract: only RGB models are supported, got {self.color_order!r}")
        if self.roi is not None:
            check_roi(self.roi)

    def to_dict(self) -> dict:
        """A JSON-ready dict (the form stored in bundle.json and artifact metadata)."""
        d = asdict(self)
        d["roi"] = list(self.roi) if self.roi is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> InputContract:
        """Inverse of :meth:`to_dict`; unknown keys are an error, not silently dropped."""
        known = {"height", "width", "color_order", "interpolation", "roi", "resize"}
        unknown = set(d) - known - set(_FIXED_LEGACY)
        if unknown:
            raise ValueError(f"input contract: unknown keys {sorted(unknown)}; expected {sorted(known)}")
        for key, only in _FIXED_LEGACY.items():
            if key in d and d[key] != only:  # JSON lists compare by value: [0, 255] == [0.0, 255.0]
                raise ValueError(f"input contract: {key} = {d[key]!r} is not supported (only {only!r})")
        kw = {k: v for k, v in d.items() if k in known}
        if kw.get("roi") is not None:
            kw["roi"] = tuple(kw["roi"])
        return cls(**kw)
