"""Stratified, duplicate-aware train/val/test split, saved as file lists and reused on re-runs.

The file format is :mod:`runtime.split_file`'s.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from runtime.fsutil import atomic_write_text
from runtime.split_file import read_split_file
from train.errors import DataError

SPLITS = ("train", "val", "test")
# When a duplicate group has members in several old splits, the whole group goes to the one
# listed first: moving a training image into test is safe, the reverse would leak.
_PRIORITY = ("test", "val", "train")


def read_split_lists(folder: Path) -> dict[str, str] | None:
    """``{relative path: split}`` from ``folder/{train,val,test}.txt``; None when there are none."""
    if not all((folder / f"{s}.txt").is_file() for s in SPLITS):
        return None
    return {rel: s for s in SPLITS for rel, _ in read_split_file(folder / f"{s}.txt", DataError)}


def write_split_lists(folder: Path, paths: list[str], labels: list[str], split_of: list[str]) -> None:
    """Write the three list files (sorted, so that re-runs produce identical files)."""
    for s in SPLITS:
        rows = sorted(f"{p}\t{lab}" for p, lab, x in zip(paths, labels, split_of, strict=True) if x == s)
        atomic_write_text(folder / f"{s}.txt", "".join(r + "\n" for r in rows))


def _groups(group_ids: list[int]) -> dict[int, list[int]]:
    members: dict[int, list[int]] = {}
    for i, g in enumerate(group_ids):
        members.setdefault(g, []).append(i)
    return members


def _assign_new(members: list[list[int]], n: int, seed: int, val_fraction: float, test_fraction: float,
                at_least_one: bool) -> list[str]:
    """Greedy fill test, then val, then train with whole groups in seeded random order."""
    order = np.random.default_rng(seed).permutation(len(members))
    fractions = {"test": test_fraction, "val": val_fraction}
    want = {k: max(1 if at_least_one and f > 0 else 0, round(n * f)) for k, f in fractions.items()}
    have = {"test": 0, "val": 0}
    out = [""] * len(members)
    for k in order:
        target = next((s for s in ("test", "val") if have[s] < want[s]), "train")
        out[k] = target
        if target != "train":
            have[target] += len(members[k])
    return out


def stratified_split(paths: list[str], labels: list[str], group_ids: list[int], *, seed: int,
                     val_fraction: float, test_fraction: float,
                     previous: dict[str, str] | None = None,
                     given: dict[str, str] | None = None) -> list[str]:
    """Return the split name of every image.

    Duplicate groups move as one. Images listed in ``previous`` keep their split (and pull their
    duplicates with them); the others are split per class with the seed. ``given`` (a set that
    comes split) fixes its val and test images as ``previous`` does (``previous`` wins where both
    list one); a split it does not give is carved from its train images at its fraction.
    """
    fresh = not previous
    if given:
        previous = {**{p: s for p, s in given.items() if s != "train"}, **(previous or {})}
        val_fraction, test_fraction = (0.0 if s in given.values() else f
                                       for s, f in (("val", val_fraction), ("test", test_fraction)))
    split_of = [""] * len(paths)
    pending: dict[str, list[list[int]]] = {}
    for members in _groups(group_ids).values():
        old = {previous[paths[i]] for i in members if previous and paths[i] in previous}
        if old:
            target = next(s for s in _PRIORITY if s in old)
            for i in members:
                split_of[i] = target
            continue
        label = Counter(labels[i] for i in members).most_common(1)[0][0]
        pending.setdefault(label, []).append(members)
    for li, label in enumerate(sorted(pending)):
        groups = sorted(pending[label])
        n = sum(len(g) for g in groups)
        chosen = _assign_new(groups, n, seed * 1000 + li, val_fraction, test_fraction, fresh)
        for members, target in zip(groups, chosen, strict=True):
            for i in members:
                split_of[i] = target
    _check_every_split_has_every_class(labels, split_of, bool(given))
    return split_of


_SPLIT_FIX = "add more distinct images of this class, or pass other --val-fraction/--test-fraction"
_GIVEN_FIX = ("the set comes split by its folders: add a folder of this class, with photos, to each split "
              "folder, or merge the split folders into one class-per-folder tree for the tool to split")


def _check_every_split_has_every_class(labels: list[str], split_of: list[str], given: bool) -> None:
    for label in sorted(set(labels)):
        have = Counter(s for lab, s in zip(labels, split_of, strict=True) if lab == label)
        empty = [s for s in SPLITS if have[s] == 0]
        if empty:
            raise DataError(
                f"class {label!r} cannot be split: no image of it in the {'/'.join(empty)} split "
                f"(it has {sum(have.values())} usable images, {dict(have)}, duplicates kept together); "
                + (_GIVEN_FIX if given else _SPLIT_FIX))
