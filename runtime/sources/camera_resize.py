"""Camera-side resizing (``--camera-resize``): the camera's own hardware delivers model-sized frames.

Resizing a 640x480 frame to 224x224 on the CPU costs 1.3 ms on two cores, a fifth to a quarter of a
MobileNetV2 inference (``python -m benchmarks.preprocess_paths``), and it is what keeps the loop
above 1.15x the bare invoke (``python -m benchmarks.runtime_overhead``). The Raspberry Pi ISP
(through Picamera2) and the Jetson VIC (through ``nvvidconv``) can crop and scale for free, so
with this option they cut the input contract's ROI out of the sensor image and scale it straight
to the model's input size; the CPU then only swaps colour channels.

The pixels differ slightly from the CPU path: the hardware scaler is not OpenCV's area filter
(the contract's ``interpolation``). Both downscale the same sensor image; check a new line's
flagging on replayed frames if the model sits close to its thresholds. Like ``cv2.resize``, the
requested output stretches an ROI whose aspect differs from the model's; that the ISP and VIC do
the same (rather than crop further) is what their documentation says, not yet seen on a board.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.contract import InputContract
from runtime.preprocess import roi_pixels
from runtime.sources.base import SourceError

SUPPORTED = "picamera2 (Raspberry Pi ISP) and csi://N (Jetson VIC)"


@dataclass(frozen=True)
class CameraResize:
    """Deliver ``width`` x ``height`` frames of the ``roi`` (fractions of the field of view)."""

    width: int
    height: int
    roi: tuple[float, float, float, float] | None = None

    @classmethod
    def for_contract(cls, contract: InputContract) -> CameraResize:
        """What a model with this input contract needs from the camera (see :func:`supports`)."""
        return cls(contract.width, contract.height, contract.roi)

    def crop_edges(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """The ROI as pixel edges ``(left, top, right, bottom)`` of a ``width`` x ``height`` image."""
        return None if self.roi is None else roi_pixels(self.roi, width, height)


def supports(contract: InputContract) -> str | None:
    """None when the camera's scaler can deliver this contract's pixels, else the reason in words.

    Camera scalers stretch the ROI to the requested size; a model trained with an aspect-keeping
    resize (letterbox, crop) would see other pixels than it learnt on.
    """
    if contract.resize == "stretch":
        return None
    return (f"camera-side resize is off: this model keeps the aspect ({contract.resize!r} resize) and camera "
            "scalers stretch, so the CPU resizes as in training (train with --resize stretch to use the "
            "camera's scaler)")


def refuse(spec: str) -> SourceError:
    """The error for a source whose hardware cannot do the resize, with the fix."""
    return SourceError(
        f"source {spec!r}: --camera-resize needs a camera that crops and scales in hardware: {SUPPORTED}. "
        "Fix: drop --camera-resize (with a device profile: add --no-camera-resize) and ask the camera for "
        "a small mode instead, e.g. --width 320 --height 240; the CPU then resizes each frame.")
