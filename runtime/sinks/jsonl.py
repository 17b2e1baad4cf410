"""The durable event log: append-only JSONL, one ``os.write`` per event, ``fsync`` per batch."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from runtime.sinks.base import Sink, SinkError, each_outcome, to_json

log = logging.getLogger(__name__)


class JsonlSink(Sink):
    """Appends one JSON line per event to ``path``; never truncates.

    The file is opened ``O_APPEND`` and each line goes out in a single ``write``, then ``fsync``:
    a ``kill -9`` or power cut can at worst tear the line being written, never an earlier one.
    Events queued together (a burst, or the backlog flushed at SIGTERM) share one ``fsync``
    (group commit): on an SD card or a slow disk an fsync costs 10-200 ms, and one per event
    made a 400-event backlog outlast the shutdown deadline. On restart the file is reopened (not
    overwritten), and a torn last line left by the previous run is terminated so that new records
    start on a line of their own.
    """

    group_commit = True

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
        self._write(event)
        os.fsync(self._fd)

    def handle_batch(self, items: list[tuple[dict, np.ndarray | None]]) -> list[Exception | None]:
        """Write every event's line, then one ``fsync``: an event counts as delivered only once
        that ``fsync`` returns."""
        outcomes = each_outcome(items, lambda event, _frame: self._write(event))
        if self._fd is not None and None in outcomes:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                err = SinkError(f"event log {self.path}: fsync failed ({exc.strerror}); the "
                                "events written since the last fsync may not survive a power cut")
                outcomes = [o if o is not None else err for o in outcomes]
        return outcomes

    def _write(self, event: dict) -> None:
        if self._fd is None:
            raise SinkError(f"event log {self.path} is closed")
        _write_all(self._fd, (to_json(event) + "\n").encode("utf-8"))

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
