"""A state file kept up to date off the caller's thread: atomic writes, coalesced.

The inference loop changes some state (the production counters) on every part. Writing it
durably there (temp file, ``fsync``, rename) costs 10-200 ms on an SD card, and a live camera's
frames go stale meanwhile. Instead the loop only says the state changed (:meth:`touch`); one
background thread writes the newest state, at most once per ``min_interval`` seconds, so a burst of
changes costs one write (and one SD-card erase, not one per part). What the file can lag by after
a ``kill -9`` or a power cut must be recoverable elsewhere: the counters replay the event log.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from runtime.fsutil import atomic_write_json


class CheckpointWriter:
    """Writes ``snapshot()`` to ``path`` atomically after each :meth:`touch`, from its own thread."""

    def __init__(self, path: str | Path, snapshot: Callable[[], dict], min_interval: float = 1.0,
                 log: Callable[[str], None] | None = None):
        self.path, self._snapshot, self.min_interval, self._log = Path(path), snapshot, min_interval, log
        self.writes = 0  # completed writes
        self._dirty, self._closing = threading.Event(), threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
        self._thread.start()

    def touch(self) -> None:
        """The state changed: write it soon (never blocks)."""
        self._dirty.set()

    def write_now(self) -> bool:
        """Write the current state from the caller's thread; False (and logged) when it failed."""
        try:
            atomic_write_json(self.path, self._snapshot())
        except OSError as exc:
            if not self._failing and self._log:  # once per outage, not once per part
                self._log(f"[warn] {self.path}: cannot write ({exc.strerror or exc}); will retry. "
                          "Fix: free space or make the folder writable; the event log keeps every part")
            self._failing = True
            return False
        if self._failing and self._log:
            self._log(f"[info] {self.path}: written again")
        self._failing = False
        self.writes += 1
        return True

    def close(self) -> None:
        """Stop the thread and write the final state (a clean stop leaves the file current)."""
        self._closing.set()
        self._dirty.set()
        self._thread.join()
        self.write_now()

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            if self._closing.is_set():
                return
            self._dirty.clear()
            if not self.write_now():
                self._dirty.set()  # retry after the pause
            self._closing.wait(self.min_interval)  # coalesce; close() cuts the pause short
