"""Write a bundle atomically: build it in a hidden folder next to the target, then swap.

``bundle.json`` is written last inside the staging folder, and the folder only appears under its
real name once complete; a crash leaves either the old bundle or a hidden ``.<name>.staging-*``
folder, never a half-written bundle that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from export.errors import ExportError


def check_output(out: Path) -> None:
    """Refuse outputs we cannot write, or that would destroy something that is not a bundle."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, expected a bundle folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / "bundle.json").is_file():
        raise ExportError(f"--out {out} exists and is not a bundle (no bundle.json); refusing to replace "
                          "it. Choose another --out, or move that folder away")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise ExportError(f"cannot write the bundle under {parent}: {exc.strerror or exc}. Fix: choose a "
                          "writable --out folder, or fix its permissions") from exc


@contextlib.contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A fresh hidden folder next to ``out``; removed if the block raises."""
    staging = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish(staging: Path, out: Path) -> None:
    """Swap the finished staging folder into place: old aside, new in, old deleted."""
    if not (staging / "bundle.json").is_file():
        raise ExportError(f"internal: {staging} has no bundle.json; refusing to publish an incomplete bundle")
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    try:
        os.rename(staging, out)
    except OSError:
        if old is not None:
            os.rename(old, out)  # put the previous bundle back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
