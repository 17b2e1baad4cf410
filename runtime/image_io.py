"""Decode image files into RGB uint8 pixels, robustly.

Used by training intake, the export gate and folder replay on the device, so that all three
decode a file identically. Factory photo folders hold broken files; every failure is an
:class:`ImageReadError` with a reason, never a crash and never a silently wrong image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from runtime.errors import ImageReadError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND"


def is_image_path(path: str | Path) -> bool:
    """True for file names with a supported image suffix (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _check_complete(data: bytes) -> str | None:
    """Return a reason if the bytes are a visibly truncated JPEG or PNG.

    OpenCV decodes a truncated JPEG with only a warning on stderr and grey fill for the missing
    rows, which would silently train on a broken picture. The end markers catch that.
    """
    if data.startswith(_JPEG_SOI) and _JPEG_EOI not in data[-4096:]:
        return "truncated JPEG (no end-of-image marker)"
    if data.startswith(_PNG_MAGIC) and _PNG_IEND not in data[-64:]:
        return "truncated PNG (no IEND chunk)"
    return None


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes into an ``HxWx3`` RGB uint8 array.

    Greyscale is replicated to 3 channels, alpha is dropped, palette images are expanded,
    16-bit images are scaled to 8 bit and the EXIF orientation is applied (OpenCV's
    ``IMREAD_COLOR`` does all of this).
    """
    if not data:
        raise ImageReadError(name, "empty file (0 bytes)")
    reason = _check_complete(data)
    if reason:
        raise ImageReadError(name, reason)
    buf = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageReadError(name, "not a decodable image (JPEG/PNG/BMP/TIFF/WebP expected)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file into ``HxWx3`` RGB uint8; raise :class:`ImageReadError` on failure."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(str(path), f"cannot read file: {exc.strerror or exc}") from exc
    return decode_image(data, str(path))
