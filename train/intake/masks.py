"""Segmentation masks kept beside the photos: skipped with their reason, never trained on as photos.

Public defect sets often ship each photo's pixel mask next to it (Magnetic Tile keeps ``x.jpg`` and
its mask ``x.png`` in one folder; others name it ``x_mask.png`` or keep a ``ground_truth/`` folder).
Pointed at such a folder, the intake would take the masks for parts of their class: white blobs on
black, which no camera on the line will ever show, and an "all black" good class. A file is taken
for a mask only when its name *and* its pixels say so: it shares its name with another image in its
folder, or a word of its path is mask/gt/annotation/...; and it is grey with at most a few levels (a
binary or label-index mask). A photo fails the second test (its sensor noise alone gives many levels),
so photos are never dropped by this rule, whatever they are called.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import PurePosixPath

import numpy as np

# Not "label": label printing is a line of its own, and a binarised scan of a label is a photo of a part.
MASK_WORDS = frozenset({"mask", "masks", "gt", "groundtruth", "annotation", "annotations", "segmentation"})
MAX_MASK_LEVELS = 8  # binary masks have 2; label-index masks one per class


def mask_names(files: list[tuple[str, str]]) -> dict[str, str]:
    """Files whose name marks them as possible masks: ``{relative path: why}``."""
    by_stem: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rel, _ in files:
        p = PurePosixPath(rel)
        by_stem[(str(p.parent), p.stem.lower())].append(rel)
    why = {}
    for rel, _ in files:
        p = PurePosixPath(rel)
        twins = [t for t in by_stem[(str(p.parent), p.stem.lower())] if t != rel]
        words = set(re.split(r"[^a-z0-9]+", str(p.with_suffix("")).lower()))
        if twins:
            why[rel] = f"it shares its name with {twins[0]}"
        elif words & MASK_WORDS or "groundtruth" in re.sub(r"[^a-z0-9]", "", rel.lower()):
            why[rel] = "its path names it a mask"
    return why


def grey_levels(rgb: np.ndarray) -> int | None:
    """How many grey levels a mask-like image holds: None for colour or many-level images (photos)."""
    if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
        return None
    n = len(np.unique(rgb[..., 0]))
    return n if n <= MAX_MASK_LEVELS else None


def mask_reason(name_why: str, levels: int) -> str:
    """The data report's line for a skipped mask, with how to silence it."""
    return (f"a segmentation mask, not a photo ({name_why}, and it holds {levels} grey level"
            f"{'s' if levels != 1 else ''}); masks are not trained on: move them out of the class "
            "folders to silence this")
