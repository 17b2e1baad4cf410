"""Keeping TensorFlow's C++ start-up logging off the terminal of the entry points that import it.

``python -m train`` and ``python -m export`` call :func:`quiet_tensorflow` right after parsing
their flags, before anything imports TensorFlow. It lives here, in the package every stage
already imports, because train and export do not import each other; it never imports TensorFlow
itself, so ``runtime`` stays TensorFlow-free.

Two things are needed, because TensorFlow 2.21 logs through absl before it reads its own setting:

- ``TF_CPP_MIN_LOG_LEVEL=2`` in the environment: TensorFlow's C++ INFO and WARNING lines off
  (errors still show) once its libraries are up, in this process and in every process it starts
  (the export's converter workers inherit it);
- while ``import tensorflow`` loads those libraries, absl writes to stderr regardless of any
  threshold ("All log messages before absl::InitializeLog() is called are written to STDERR",
  then e.g. "oneDNN custom operations are on"), and absl reads no environment variable for it. So
  that first import runs with stderr buffered, and every line but those INFO/WARNING ones is
  written back when it returns.

A value the user set in the environment is never overridden, and ``--verbose`` leaves TensorFlow
as loud as it is by default. A process that dies inside ``import tensorflow`` loses what it
printed there: rerun with ``--verbose`` to see it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "2"  # INFO and WARNING off; ERROR and FATAL kept

# absl's own notice, and absl-format INFO/WARNING lines: "I0000 00:00:1700000000.123456  4242 port.cc:153] "
STARTUP_NOISE = re.compile(rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
                           rb"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] )")

_set_here = False  # whether LEVEL_VAR holds our value (so --verbose may take it back), not the user's


def quiet_tensorflow(verbose: bool = False) -> None:
    """Quiet TensorFlow's C++ logging for this process and its children, unless ``verbose``.

    Call before TensorFlow is imported. Does nothing to a ``TF_CPP_MIN_LOG_LEVEL`` the user set.
    """
    global _set_here
    if verbose:
        if _set_here:  # quieted earlier in this process (an in-process second run): undo only ours
            os.environ.pop(LEVEL_VAR, None)
            _set_here = False
        return
    if LEVEL_VAR in os.environ:
        return
    os.environ[LEVEL_VAR] = QUIET_LEVEL
    _set_here = True
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


@contextmanager
def native_stderr_filtered(noise: re.Pattern[bytes] = STARTUP_NOISE) -> Iterator[None]:
    """Buffer what is written to file descriptor 2 (C++ code included); write back all but ``noise``."""
    if sys.stderr is not None:
        sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buffer.seek(0)
            kept = [line for line in buffer.read().splitlines(keepends=True) if not noise.match(line)]
            if kept:
                os.write(2, b"".join(kept))


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, with a loader that runs its import under :func:`native_stderr_filtered`.

    An import hook rather than a call at each import site: TensorFlow is imported lazily, by keras,
    tf2onnx and several train modules, and whichever comes first must be the filtered one.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: TensorFlow's submodules, and later imports, are plain
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader)
        return spec


class _FilteredLoader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.inner  # TensorFlow sees its own loader
        with native_stderr_filtered():
            self.inner.exec_module(module)
