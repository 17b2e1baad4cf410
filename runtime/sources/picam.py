"""Raspberry Pi CSI cameras through Picamera2 (libcamera), imported only when asked for."""

from __future__ import annotations

import numpy as np

from runtime.sources.base import SourceError
from runtime.sources.latest import Device, ReconnectPolicy
from runtime.sources.live import LiveSource

PICAMERA2_MISSING = (
    "the picamera2 source needs the Picamera2 library, which is apt-only on Raspberry Pi OS Bookworm: "
    "`sudo apt install -y python3-picamera2`, then create the venv with `python3 -m venv "
    "--system-site-packages .venv` and pin `numpy<2` `ml_dtypes<0.6` `opencv-python-headless<4.12` in it "
    "(apt's picamera2 is built against numpy 1). See devices/ for the Raspberry Pi recipe.")


def _import_picamera2():
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise SourceError(f"{PICAMERA2_MISSING} (import failed: {exc})") from exc
    return Picamera2


class Picamera2Device(Device):
    """One started Picamera2 camera; ``grab`` blocks until libcamera delivers the next frame."""

    def __init__(self, camera_num: int = 0, width: int | None = None, height: int | None = None,
                 fps: float | None = None):
        self.camera_num = camera_num
        self.size = (width, height) if width and height else None
        self.fps = fps
        self.cam = None

    def open(self) -> None:
        picamera2_cls = _import_picamera2()
        cam = picamera2_cls(self.camera_num)
        try:
            # libcamera's "RGB888" is laid out B,G,R in memory: exactly OpenCV's BGR order.
            main = {"format": "RGB888", **({"size": self.size} if self.size else {})}
            controls = {"FrameRate": float(self.fps)} if self.fps else {}
            # Two buffers: enough to keep streaming while the reader copies one out.
            cam.configure(cam.create_video_configuration(main=main, controls=controls, buffer_count=2))
            cam.start()
        except Exception:
            cam.close()
            raise
        self.cam = cam

    def grab(self) -> np.ndarray | None:
        return self.cam.capture_array("main")

    def close(self) -> None:
        if self.cam is not None:
            try:
                self.cam.stop()
            finally:
                self.cam.close()
                self.cam = None


class Picamera2Source(LiveSource):
    """``picamera2`` / ``picamera2://N``: camera N on the Pi's CSI connector(s)."""

    def __init__(self, camera_num: int = 0, *, width: int | None = None, height: int | None = None,
                 fps: float | None = None, reconnect: bool = True, policy: ReconnectPolicy | None = None):
        _import_picamera2()  # fail at construction with the install recipe, not later in a thread

        def make_device() -> Picamera2Device:
            return Picamera2Device(camera_num, width, height, fps)

        super().__init__(f"picamera2://{camera_num}", make_device, reconnect=reconnect, policy=policy)
