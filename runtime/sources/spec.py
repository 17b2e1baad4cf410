"""``open_source(spec)``: one string (the ``--source`` flag) to the right :class:`FrameSource`."""

from __future__ import annotations

import re
from pathlib import Path

from runtime.hints import closest
from runtime.image_io import is_image_path
from runtime.sources.base import FrameSource, SourceError
from runtime.sources.camera_resize import CameraResize, refuse
from runtime.sources.latest import ReconnectPolicy

ACCEPTED_FORMS = """accepted --source forms:
  0, 1, /dev/video0            USB/V4L2 camera (index or device path)
  line.mp4                     video file: every frame in order (--realtime paces it to its FPS)
  rtsp://..., http(s)://...    network stream (FFMPEG)
  'v4l2src ! ... ! appsink'    GStreamer pipeline (needs an OpenCV built with GStreamer)
  csi://0                      Jetson CSI camera (nvarguscamerasrc pipeline)
  picamera2, picamera2://0     Raspberry Pi camera through Picamera2
  parts/, 'parts/*.png'        image folder or glob, replayed in sorted order"""

_STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_SCHEMES = (*_STREAM_SCHEMES, "csi", "picamera2", "file")


def open_source(spec: str, *, realtime: bool = False, width: int | None = None, height: int | None = None,
                fps: float | None = None, reconnect: bool = True, policy: ReconnectPolicy | None = None,
                camera_resize: CameraResize | None = None) -> FrameSource:
    """The frame source for ``spec`` (not opened yet: use it as a context manager).

    ``realtime``/``fps`` pace file and folder replay; ``width``/``height``/``fps`` request a camera
    mode; ``reconnect``/``policy`` govern how live sources recover from a lost device;
    ``camera_resize`` asks the camera's hardware for model-sized frames (picamera2, csi:// only).
    Raises :class:`SourceError` naming what was given and the accepted forms.
    """
    spec = str(spec).strip()
    live = {"width": width, "height": height, "fps": fps, "reconnect": reconnect, "policy": policy}
    if not spec:
        raise SourceError(f"empty --source\n{ACCEPTED_FORMS}")
    scheme = _scheme(spec)
    if spec.lower() == "picamera2" or scheme in ("csi", "picamera2"):
        live["camera_resize"] = camera_resize
    elif camera_resize is not None:
        raise refuse(spec)
    if spec.isdigit() or spec.startswith("/dev/"):
        from runtime.sources.capture import v4l2_source

        return v4l2_source(int(spec) if spec.isdigit() else spec, **live)
    if " ! " in spec:
        return _pipeline(spec, reconnect, policy)
    if scheme is not None:
        return _from_url(spec, scheme, realtime=realtime, **live)
    if spec.lower() == "picamera2":
        return _picamera2(spec, "0", **live)
    return _from_path(spec, realtime=realtime, fps=fps)


def _scheme(spec: str) -> str | None:
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", spec)
    return m.group(1).lower() if m else None


def _from_url(spec: str, scheme: str, *, realtime: bool, **live) -> FrameSource:
    rest = spec.split("://", 1)[1]
    if scheme in _STREAM_SCHEMES:
        from runtime.sources.capture import stream_source

        return stream_source(spec, reconnect=live["reconnect"], policy=live["policy"])
    if scheme == "csi":
        return _csi(spec, rest, **live)
    if scheme == "picamera2":
        return _picamera2(spec, rest or "0", **live)
    if scheme == "file":
        return _from_path(rest, realtime=realtime, fps=live["fps"])
    hint = closest(scheme, _SCHEMES)
    did_you_mean = f" (did you mean {hint}://?)" if hint else ""
    raise SourceError(f"source {spec!r}: unknown scheme {scheme}://{did_you_mean}\n{ACCEPTED_FORMS}")


def _camera_number(spec: str, text: str) -> int:
    if not text.isdigit():
        raise SourceError(f"source {spec!r}: expected a camera number after '://' (e.g. csi://0), "
                          f"found {text!r}\n{ACCEPTED_FORMS}")
    return int(text)


def _csi(spec: str, rest: str, *, width, height, fps, reconnect, policy, camera_resize) -> FrameSource:
    from runtime.sources.gstreamer import CsiCamera, require_gstreamer

    mode = {k: v for k, v in (("width", width), ("height", height), ("fps", fps)) if v}
    camera = CsiCamera(sensor_id=_camera_number(spec, rest), resize=camera_resize, **mode)
    require_gstreamer(spec)
    return _pipeline(camera.pipeline(), reconnect, policy, description=spec, checked=True)


def _pipeline(pipeline: str, reconnect: bool, policy: ReconnectPolicy | None, *,
              description: str | None = None, checked: bool = False) -> FrameSource:
    from runtime.sources.capture import pipeline_source
    from runtime.sources.gstreamer import require_gstreamer

    if not checked:
        require_gstreamer(pipeline)
    return pipeline_source(pipeline, reconnect=reconnect, policy=policy, description=description)


def _picamera2(spec: str, number: str, **live) -> FrameSource:
    from runtime.sources.picam import Picamera2Source

    return Picamera2Source(_camera_number(spec, number), **live)


def _from_path(spec: str, *, realtime: bool, fps: float | None) -> FrameSource:
    from runtime.sources.image_folder import ImageFolderSource, is_glob

    path = Path(spec).expanduser()
    if is_glob(spec) or path.is_dir() or (path.is_file() and is_image_path(path)):
        return ImageFolderSource(spec if is_glob(spec) else path, realtime=realtime, fps=fps)
    if path.is_file():
        from runtime.sources.video_file import VideoFileSource

        return VideoFileSource(path, realtime=realtime, fps=fps)
    raise SourceError(f"source {spec!r}: no such file or folder, and not a camera, URL or pipeline "
                      f"(from {Path.cwd()})\n{ACCEPTED_FORMS}")
