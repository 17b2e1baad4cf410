"""The durable event log: append-only JSONL, one ``os.write`` + ``fsync`` per event."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from runtime.sinks.base import Sink, SinkError, to_json

log = logging.getLogger(__name__)


class JsonlSink(Sink):
    """Appends one JSON line per event to ``path``; never truncates.

    The file is opened ``O_APPEND`` and each line goes out in a single ``write`` followed by
    ``fsync``: a ``kill -9`` or power cut can at worst tear the line being written, never an
    earlier one. On restart the file is reopened (not overwritten), and a torn last line left by
    the previous run is terminated so that new records start on a line of their own.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = f"jsonl:{self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existed = self.path.exists()
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                                           0o644)
        except OSError as exc:
            raise SinkError(f"event log {self.path}: cannot open for appending ({exc.strerror}). "
                            "Fix: choose a writable path with --events") from exc
        if existed:
            self._terminate_torn_line()
        else:
            _fsync_dir(self.path.parent)  # make the new file's directory entry durable too

    def handle(self, event: dict, frame: np.ndarray | None) -> None:
        if self._fd is None:
            raise SinkError(f"event log {self.path} is closed")
        _write_all(self._fd, (to_json(event) + "\n").encode("utf-8"))
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _terminate_torn_line(self) -> None:
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return
            f.seek(-1, os.SEEK_END)
            last = f.read(1)
        if last != b"\n":
            log.warning("%s: the previous run left a torn last line (killed mid-write); keeping it and "
                        "starting new records on a fresh line", self.path)
            _write_all(self._fd, b"\n")
            os.fsync(self._fd)


def _write_all(fd: int, data: bytes) -> None:
    # One write is the normal case (atomic position update under O_APPEND); loop only if the
    # kernel accepted part of it (disk nearly full, signal).
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the data itself is still synced
    finally:
        os.close(fd)
