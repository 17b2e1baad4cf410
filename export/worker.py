"""Run converter calls in a separate process, so a converter crash fails one format, not the export.

The TFLite converter does not always raise: for some graphs its quantizer prints
``error: scale out of expressed type range`` and then segfaults (seen with SELU/softplus heads
under TFLITE_BUILTINS_INT8). In-process, that would kill the whole export with no message. One
spawned worker (TensorFlow imported once) runs the conversions; if it dies, the job that killed it
is recorded with the tail of the worker's stderr, and the next job gets a fresh worker.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from export.errors import ExportError
from runtime.tf_logs import STARTUP_NOISE


class ConverterCrash(ExportError):
    """The converter process died (segfault, abort, out of memory) instead of raising."""


def _redirect_output(log_path: str) -> None:
    # Worker initializer: keep the converter's C++ chatter out of the user's terminal, but on
    # disk so that a crash can be explained. Its log level is the parent's: inherited through the
    # environment (runtime.tf_logs), so that --verbose reaches the converter too.
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)


class ConverterWorker:
    """A lazily started single-process pool; :meth:`run` calls ``fn(*args)`` in it."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self._pool: ProcessPoolExecutor | None = None

    def run(self, fn, *args):
        """``fn(*args)`` in the worker; a dead worker becomes :class:`ConverterCrash`."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_redirect_output, initargs=(str(self.log_path),))
        start = self.log_path.stat().st_size if self.log_path.exists() else 0
        try:
            return self._pool.submit(fn, *args).result()
        except BrokenProcessPool as exc:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            raise ConverterCrash(f"the converter process died instead of raising; its last output: "
                                 f"{self._tail(start) or '(none)'}") from exc

    def _tail(self, start: int) -> str:
        """The last error-looking lines the worker printed for the current job."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                raw = f.read().splitlines()
        except OSError:
            return ""
        # TensorFlow's INFO/WARNING lines say nothing about a crash, and one ("oneDNN custom operations
        # are on ... round-off errors") would pass for the error below and push the real cause out.
        lines = [ln.decode("utf-8", "replace") for ln in raw if not STARTUP_NOISE.match(ln)]
        errors = [re.sub(r"^.*?error:\s*", "", ln).strip() for ln in lines
                  if "error" in ln.lower() or "fatal" in ln.lower()]
        return "; ".join((errors or [ln.strip() for ln in lines if ln.strip()])[-3:])[:600]

    def close(self) -> None:
        """Stop the worker (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
