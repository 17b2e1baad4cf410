"""GStreamer pipelines through OpenCV, and the Jetson CSI camera (``csi://N``) shortcut."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import cv2

from runtime.sources.base import SourceError
from runtime.sources.camera_resize import CameraResize

# The appsink settings that make a pipeline behave like a latest-frame camera: never queue old
# buffers (drop=true max-buffers=1) and never wait for the clock (sync=false).
APPSINK = "appsink drop=true max-buffers=1 sync=false"


@lru_cache(maxsize=1)
def gstreamer_available() -> bool:
    """True when this OpenCV build can open GStreamer pipelines (PyPI wheels cannot)."""
    return re.search(r"GStreamer:\s+YES", cv2.getBuildInformation()) is not None


def require_gstreamer(spec: str) -> None:
    """Raise a :class:`SourceError` that says how to get a GStreamer-enabled OpenCV."""
    if gstreamer_available():
        return
    raise SourceError(
        f"source {spec!r} is a GStreamer pipeline, but this OpenCV {cv2.__version__} was built without "
        "GStreamer (the PyPI opencv-python(-headless) wheels never have it). Fix: on a Jetson use "
        "JetPack's system OpenCV: create the venv with --system-site-packages and "
        "`pip uninstall opencv-python-headless` inside it; elsewhere install your distribution's "
        "python3-opencv or build OpenCV with -DWITH_GSTREAMER=ON. Check with: "
        "python -c \"import cv2; print(cv2.getBuildInformation())\" | grep GStreamer")


def _fraction(fps: float) -> str:
    """GStreamer framerate caps: 30 -> 30/1, 12.5 -> 25/2, NTSC 29.97 -> 30000/1001."""
    ntsc = round(fps * 1.001)
    if not float(fps).is_integer() and abs(fps - ntsc / 1.001) < 0.005:
        return f"{ntsc * 1000}/1001"
    f = Fraction(fps).limit_denominator(1000)
    return f"{f.numerator}/{f.denominator}"


@dataclass(frozen=True)
class CsiCamera:
    """A Jetson CSI camera read through ``nvarguscamerasrc`` (Argus ISP, NVMM buffers)."""

    sensor_id: int = 0
    width: int = 1280
    height: int = 720
    fps: float = 30.0
    flip_method: int = 0  # nvvidconv flip-method: 0 none, 2 rotate 180 (a camera mounted upside down)
    resize: CameraResize | None = None  # --camera-resize: the VIC crops the ROI and scales to this size

    def pipeline(self) -> str:
        """The GStreamer pipeline: NV12 in NVMM memory, converted to BGR for OpenCV, newest frame only."""
        return (
            f"nvarguscamerasrc sensor-id={self.sensor_id} ! "
            f"video/x-raw(memory:NVMM), width=(int){self.width}, height=(int){self.height}, "
            f"format=(string)NV12, framerate=(fraction){_fraction(self.fps)} ! "
            f"nvvidconv flip-method={self.flip_method}{self._crop()} ! "
            f"video/x-raw{self._size()}, format=(string)BGRx ! "
            f"videoconvert ! video/x-raw, format=(string)BGR ! {APPSINK}"
        )

    def _crop(self) -> str:
        # nvvidconv's left/right/top/bottom are the crop rectangle's edges in input pixels; the
        # input is the unflipped sensor image, so with a flip-method the ROI would be mirrored.
        edges = self.resize.crop_edges(self.width, self.height) if self.resize else None
        if edges is None:
            return ""
        if self.flip_method:
            raise SourceError(f"csi://{self.sensor_id}: --camera-resize with an ROI needs flip-method 0 "
                              f"(got {self.flip_method}). Fix: mount the camera upright, or drop "
                              "--camera-resize so the CPU crops the flipped frame")
        left, top, right, bottom = edges
        return f" left={left} right={right} top={top} bottom={bottom}"

    def _size(self) -> str:
        if self.resize is None:
            return ""
        return f", width=(int){self.resize.width}, height=(int){self.resize.height}"
