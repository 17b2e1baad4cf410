"""Small durable-file helpers: atomic writes and file hashing."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

# mkstemp creates 0600 files; atomic writes give the result the mode a plain open() would have.
# Read once at import: os.umask can only be read by setting it, which is not thread-safe later.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    Temp file in the same folder, fsync, then rename (atomic on POSIX filesystems).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _FILE_MODE)  # bundles and snapshots are read by other users
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Atomic text write (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    """Atomic JSON write, indented and key-ordered as given."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def update_symlink(link: str | Path, target: str | Path) -> None:
    """Point ``link`` (e.g. ``runs/latest``) at ``target`` atomically, relative when possible."""
    link = Path(link)
    target = Path(target)
    rel = os.path.relpath(target, link.parent)
    tmp = link.parent / f".{link.name}.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(rel, tmp)
    os.replace(tmp, link)
