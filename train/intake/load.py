"""Decode every listed file into model-input pixels, hashing it for duplicate detection.

Pixels come from ``runtime.image_io.read_image``-equivalent decoding plus
``runtime.preprocess.prepare_rgb``: exactly what the export gate and the device compute, so the
network trains on the pixels it will see in the field. A file that does not decode is skipped
with its reason; the run goes on.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from runtime.contract import InputContract
from runtime.errors import ImageReadError
from runtime.image_io import decode_image
from runtime.preprocess import prepare_rgb
from train.intake.masks import grey_levels, mask_names, mask_reason


@dataclass
class Loaded:
    """Decoded images (N x H x W x 3 uint8) with their paths, labels and hashes."""

    images: np.ndarray
    paths: list[str]
    labels: list[str]
    sha256: list[str]
    phash: np.ndarray  # N x 32 uint8 (256-bit perceptual hashes)
    skipped: list[dict] = field(default_factory=list)


def perceptual_hash(rgb: np.ndarray) -> np.ndarray:
    """256-bit DCT perceptual hash (pHash) as 32 bytes: robust to re-encoding, resizing and tone shifts.

    256 rather than the classic 64 bits: on factory photos every part is centred and alike, and
    64-bit hashes of different parts collide (measured on the casting set and the synthetic set).
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:16, :16].flatten()
    return np.packbits(low > np.median(low[1:]))  # the DC term would dominate the median


def load_images(root: Path, files: list[tuple[str, str]], contract: InputContract,
                progress: bool = True) -> Loaded:
    """Decode ``files`` (relative path, label) under ``root``; bad ones and masks go to ``skipped``."""
    maybe_masks = mask_names(files)
    images = np.empty((len(files), contract.height, contract.width, 3), np.uint8)
    paths, labels, shas, hashes, skipped = [], [], [], [], []
    for i, (rel, label) in enumerate(files):
        try:
            data = (root / rel).read_bytes()
            rgb = decode_image(data, rel)
        except ImageReadError as exc:
            skipped.append({"path": rel, "reason": exc.reason})
            continue
        except OSError as exc:
            skipped.append({"path": rel, "reason": f"cannot read file: {exc.strerror or exc}"})
            continue
        levels = grey_levels(rgb) if rel in maybe_masks else None
        if levels is not None:
            skipped.append({"path": rel, "reason": mask_reason(maybe_masks[rel], levels)})
            continue
        images[len(paths)] = prepare_rgb(rgb, contract)
        paths.append(rel)
        labels.append(label)
        shas.append(hashlib.sha256(data).hexdigest())
        hashes.append(perceptual_hash(rgb))
        if progress and (i + 1) % 500 == 0:
            print(f"  decoded {i + 1}/{len(files)} images", file=sys.stderr, flush=True)
    return Loaded(images=images[: len(paths)], paths=paths, labels=labels, sha256=shas,
                  phash=np.array(hashes, dtype=np.uint8).reshape(-1, 32), skipped=skipped)
