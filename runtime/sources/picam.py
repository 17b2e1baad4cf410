"""Raspberry Pi CSI cameras through Picamera2 (libcamera), imported only when asked for."""

from __future__ import annotations

import numpy as np

from runtime.sources.base import SourceError
from runtime.sources.camera_resize import CameraResize
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


def video_configuration(size: tuple[int, int] | None, fps: float | None,
                        resize: CameraResize | None = None) -> dict:
    """Keyword arguments of ``Picamera2.create_video_configuration`` for this capture.

    Without ``resize``, ``size`` is the frame size asked of the ISP. With it, the ISP scales to
    the model's input size and ``size`` (if given) picks the sensor mode instead.
    """
    # libcamera's "RGB888" is laid out B,G,R in memory: exactly OpenCV's BGR order.
    main: dict = {"format": "RGB888"}
    if resize is not None:
        main["size"] = (resize.width, resize.height)
    elif size:
        main["size"] = size
    # Two buffers: enough to keep streaming while the reader copies one out.
    kwargs: dict = {"main": main, "controls": {"FrameRate": float(fps)} if fps else {}, "buffer_count": 2}
    if resize is not None and size:
        kwargs["sensor"] = {"output_size": size}
    return kwargs


def scaler_crop(full: tuple[int, int, int, int], resize: CameraResize) -> tuple[int, int, int, int] | None:
    """The ``ScalerCrop`` control (x, y, w, h in sensor pixels) for the ROI of the field of view ``full``."""
    x, y, width, height = full
    edges = resize.crop_edges(width, height)
    if edges is None:
        return None
    left, top, right, bottom = edges
    return (x + left, y + top, right - left, bottom - top)


class Picamera2Device(Device):
    """One started Picamera2 camera; ``grab`` blocks until libcamera delivers the next frame."""

    def __init__(self, camera_num: int = 0, width: int | None = None, height: int | None = None,
                 fps: float | None = None, resize: CameraResize | None = None):
        self.camera_num = camera_num
        self.size = (width, height) if width and height else None
        self.fps = fps
        self.resize = resize
        self.cam = None

    def open(self) -> None:
        picamera2_cls = _import_picamera2()
        cam = picamera2_cls(self.camera_num)
        try:
            cam.configure(cam.create_video_configuration(**video_configuration(self.size, self.fps,
                                                                               self.resize)))
            if self.resize is not None and self.resize.roi is not None:
                self._crop(cam)
            cam.start()
        except Exception:
            cam.close()
            raise
        self.cam = cam

    def _crop(self, cam) -> None:
        # After configure, the ScalerCrop maximum is the whole field of view of the chosen sensor
        # mode; set before start(), the crop applies from the first frame.
        limits = cam.camera_controls.get("ScalerCrop")
        if not limits:
            raise SourceError(f"picamera2://{self.camera_num}: this camera reports no ScalerCrop control, so "
                              "the ISP cannot crop the ROI. Fix: drop --camera-resize (the CPU crops)")
        cam.set_controls({"ScalerCrop": scaler_crop(tuple(limits[1]), self.resize)})

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
                 fps: float | None = None, reconnect: bool = True, policy: ReconnectPolicy | None = None,
                 camera_resize: CameraResize | None = None):
        _import_picamera2()  # fail at construction with the install recipe, not later in a thread

        def make_device() -> Picamera2Device:
            return Picamera2Device(camera_num, width, height, fps, camera_resize)

        super().__init__(f"picamera2://{camera_num}", make_device, reconnect=reconnect, policy=policy)
