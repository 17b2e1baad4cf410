"""Live OpenCV captures: V4L2 cameras, network streams (RTSP/HTTP) and GStreamer pipelines."""

from __future__ import annotations

import os

import cv2
import numpy as np

from runtime.sources.base import SourceError
from runtime.sources.latest import Device, ReconnectPolicy
from runtime.sources.live import LiveSource

_V4L2_HINT = ("Check `ls /dev/video*` / `v4l2-ctl --list-devices`, that no other program holds the camera, "
              "and that the user is in the 'video' group. A Raspberry Pi CSI camera on Bookworm is not "
              "readable through V4L2: use --source picamera2.")
_STREAM_HINT = ("Check the URL, credentials and that the camera is reachable (try it in ffplay or VLC); "
                "this OpenCV must have FFMPEG (see cv2.getBuildInformation()).")
_PIPELINE_HINT = "Test the pipeline with gst-launch-1.0 (replace the appsink with fakesink)."


class CaptureDevice(Device):
    """One ``cv2.VideoCapture``; a new instance per (re)open."""

    def __init__(self, target: int | str, api: int = cv2.CAP_ANY, *, params: tuple[int, ...] = (),
                 props: dict[int, float] | None = None, hint: str = ""):
        self.target = target
        self.api = api
        self.params = params
        self.props = props or {}
        self.hint = hint
        self.cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        cap = (cv2.VideoCapture(self.target, self.api, list(self.params)) if self.params
               else cv2.VideoCapture(self.target, self.api))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"OpenCV could not open {self.target!r} "
                              f"(backend {_api_name(self.api)}). {self.hint}".rstrip())
        for prop, value in self.props.items():
            cap.set(prop, value)  # a request: drivers may pick the nearest mode they support
        self.cap = cap

    def grab(self) -> np.ndarray | None:
        ok, image = self.cap.read()
        return image if ok else None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def _api_name(api: int) -> str:
    names = {cv2.CAP_ANY: "any", cv2.CAP_V4L2: "V4L2", cv2.CAP_FFMPEG: "FFMPEG",
             cv2.CAP_GSTREAMER: "GStreamer"}
    return names.get(api, str(api))


class CaptureSource(LiveSource):
    """A live ``cv2.VideoCapture`` behind the latest-frame reader (also works over a video file,
    which then replays in a loop: end of file is a lost device and is reopened)."""

    def __init__(self, target: int | str, api: int = cv2.CAP_ANY, *, params: tuple[int, ...] = (),
                 props: dict[int, float] | None = None, hint: str = "", reconnect: bool = True,
                 policy: ReconnectPolicy | None = None, description: str | None = None):
        def make_device() -> CaptureDevice:
            return CaptureDevice(target, api, params=params, props=props, hint=hint)

        super().__init__(description or str(target), make_device, reconnect=reconnect, policy=policy)


def v4l2_source(device: int | str, *, width: int | None = None, height: int | None = None,
                fps: float | None = None, reconnect: bool = True,
                policy: ReconnectPolicy | None = None) -> CaptureSource:
    """A USB/V4L2 camera by index (``0``) or device path (``/dev/video0``)."""
    props: dict[int, float] = {cv2.CAP_PROP_BUFFERSIZE: 1}  # honoured by V4L2; the reader covers the rest
    for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                        (cv2.CAP_PROP_FPS, fps)):
        if value:
            props[prop] = float(value)
    return CaptureSource(device, cv2.CAP_V4L2, props=props, hint=_V4L2_HINT, reconnect=reconnect,
                         policy=policy, description=f"v4l2:{device}")


def stream_source(url: str, *, reconnect: bool = True,
                  policy: ReconnectPolicy | None = None) -> CaptureSource:
    """An RTSP/HTTP stream through FFMPEG, with open/read timeouts so a dead camera is noticed."""
    if url.lower().startswith("rtsp"):
        # UDP RTSP smears lost packets into grey, half-decoded frames on busy factory networks;
        # TCP is the robust default. setdefault: a user's own OPENCV_FFMPEG_CAPTURE_OPTIONS wins.
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    policy = policy or ReconnectPolicy()
    timeout_ms = int(policy.stall_timeout * 1000)
    # The read timeout is twice the stall timeout: the reader's own watchdog notices a silent stream
    # first (and says "stalled"); FFMPEG's timeout only frees the abandoned thread from its read.
    # Equal timeouts raced, and a hung camera was then reported as a read error half the time.
    params = (cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 2 * timeout_ms)
    return CaptureSource(url, cv2.CAP_FFMPEG, params=params, hint=_STREAM_HINT, reconnect=reconnect,
                         policy=policy, description=_redact(url))


def pipeline_source(pipeline: str, *, reconnect: bool = True,
                    policy: ReconnectPolicy | None = None, description: str | None = None) -> CaptureSource:
    """A GStreamer pipeline ending in an appsink (the caller checked GStreamer support)."""
    return CaptureSource(pipeline, cv2.CAP_GSTREAMER, hint=_PIPELINE_HINT, reconnect=reconnect,
                         policy=policy, description=description or f"gstreamer:{pipeline}")


def _redact(url: str) -> str:
    """Hide a password in ``rtsp://user:pass@host`` before it reaches logs and stats."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    creds, at, host = authority.rpartition("@")
    if at and ":" in creds:
        return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}{slash}{path}"
    return url
