"""Replay of saved parts: an image folder or a glob, in sorted order, corrupt files skipped."""

from __future__ import annotations

import glob
import logging
import time
from pathlib import Path

import cv2

from runtime.errors import ImageReadError
from runtime.image_io import IMAGE_SUFFIXES, is_image_path, read_image
from runtime.sources.base import Frame, FrameSource, SourceError
from runtime.sources.pacing import Pacer

log = logging.getLogger(__name__)

DEFAULT_REPLAY_FPS = 10.0  # --realtime on a folder without --fps: a typical line-camera rate
_CORRUPT_NAMES_KEPT = 50  # stats list the first few broken files by name, not thousands


def is_glob(spec: str) -> bool:
    """True when ``spec`` contains glob wildcards (``*``, ``?``, ``[``)."""
    return glob.has_magic(spec)


def list_images(spec: str | Path) -> list[Path]:
    """Image files of a folder (not recursive) or of a glob (``**`` recurses), sorted by path."""
    spec = str(spec)
    if is_glob(spec):
        paths = [Path(p) for p in glob.glob(spec, recursive=True)]
    elif Path(spec).is_dir():
        paths = list(Path(spec).iterdir())
    else:
        paths = [Path(spec)]
    return sorted((p for p in paths if p.is_file() and is_image_path(p)), key=str)


class ImageFolderSource(FrameSource):
    """Every image of a folder, glob or single file in sorted order; ``index`` is the position
    in that listing (a gap means a corrupt file was skipped), ``name`` is the file's path."""

    live = False

    def __init__(self, spec: str | Path, *, realtime: bool = False, fps: float | None = None):
        super().__init__(str(spec))
        self.spec = str(spec)
        self.realtime = realtime
        self.fps = fps or DEFAULT_REPLAY_FPS
        self.files: list[Path] | None = None
        self.corrupt_files: list[str] = []
        self._pos = 0
        self._pacer = Pacer(self.fps if realtime else None, self._stop)

    def open(self) -> None:
        if self.files is not None:
            return
        files = list_images(self.spec)
        if not files:
            raise SourceError(f"source {self.spec!r}: no image files found (expected files ending in "
                              f"{', '.join(sorted(IMAGE_SUFFIXES))}; a glob must be quoted in the shell, "
                              "e.g. --source 'parts/*.png')")
        self.files = files

    def read(self) -> Frame | None:
        if self.files is None:
            raise SourceError(f"{self.spec}: read() before open(); use `with open_source(...)`")
        while not self.stopped and self._pos < len(self.files):
            index, path = self._pos, self.files[self._pos]
            self._pos += 1
            try:
                rgb = read_image(path)
            except ImageReadError as exc:
                self._skip(exc)
                continue
            self._pacer.wait()
            self._count("frames")
            # read_image is the one decoder shared with training and export; frames are BGR by contract.
            return Frame(image=cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), index=index,
                         captured=time.monotonic(), name=str(path))
        return None

    def _skip(self, exc: ImageReadError) -> None:
        self._count("corrupt_skipped")
        if len(self.corrupt_files) < _CORRUPT_NAMES_KEPT:
            self.corrupt_files.append(str(exc))
        log.warning("skipping unreadable image %s", exc)

    @property
    def stats(self) -> dict:
        return {**super().stats, "files": len(self.files or ()), "corrupt_files": list(self.corrupt_files)}
