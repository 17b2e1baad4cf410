"""A video file, every frame in order (no drops), optionally paced to its frame rate."""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from runtime.sources.base import Frame, FrameSource, SourceError, as_bgr
from runtime.sources.pacing import Pacer

# A failed read before the container's frame count is reached may be one undecodable frame
# rather than the end; try a few more before calling it the end of the file.
_MAX_CONSECUTIVE_FAILURES = 8


class VideoFileSource(FrameSource):
    """Decodes a video file with OpenCV (FFMPEG). ``index`` counts decoded frames from 0, which is
    the frame number in an intact file (FFMPEG silently skips frames it cannot decode)."""

    live = False

    def __init__(self, path: str | Path, *, realtime: bool = False, fps: float | None = None):
        super().__init__(str(path))
        self.path = Path(path)
        self.realtime = realtime
        self.fps_override = fps
        self.cap: cv2.VideoCapture | None = None
        self.fps: float | None = None
        self.frame_count: int | None = None
        self._pacer: Pacer | None = None
        self._pos = 0  # next frame number in the file

    def open(self) -> None:
        if self.cap is not None:
            return
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.path}: OpenCV could not open this file as a video (expected a "
                              "format FFMPEG decodes: .mp4, .avi, .mkv, .mov...; for a folder of images "
                              "pass the folder or a glob like 'parts/*.png')")
        self.cap = cap
        self.fps = cap.get(cv2.CAP_PROP_FPS) or None
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        self._pacer = Pacer((self.fps_override or self.fps) if self.realtime else None, self._stop)

    def read(self) -> Frame | None:
        if self.cap is None:
            raise SourceError(f"{self.path}: read() before open(); use `with open_source(...)`")
        failures = 0
        while not self.stopped:
            ok, raw = self.cap.read()
            index = self._pos
            self._pos += 1
            image = as_bgr(raw) if ok else None
            if image is not None:
                self._count("corrupt_skipped", failures)
                self._pacer.wait()
                self._count("frames")
                return Frame(image=image, index=index, captured=time.monotonic())
            failures += 1
            if not self._more_expected(failures):
                return None
        return None

    def _more_expected(self, failures: int) -> bool:
        return (self.frame_count is not None and self._pos < self.frame_count
                and failures < _MAX_CONSECUTIVE_FAILURES)

    def close(self) -> None:
        super().close()
        if self.cap is not None:
            self.cap.release()
            self.cap = None

    @property
    def stats(self) -> dict:
        return {**super().stats, "fps": self.fps, "frame_count": self.frame_count}
