"""Dataset intake: scan, decode and validate, de-duplicate, split, report.

``prepare_dataset(config, contract, run_dir)`` turns a class-per-folder tree into in-memory uint8
arrays (the exact device pixels) with a saved, reusable split and a data report. Bad files are
skipped and listed, never fatal; layout problems raise :class:`train.errors.DataError`.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.contract import InputContract
from runtime.decision import DEFAULT_TARGET_FALSE_ALARM_RATE, small_split_warning
from train.config import TrainConfig
from train.errors import DataError
from train.intake.dedup import duplicate_groups
from train.intake.load import Loaded, load_images
from train.intake.report import class_weights, imbalance, write_report
from train.intake.scan import detect_ok_label, scan_folder
from train.intake.split import SPLITS, read_split_lists, stratified_split, write_split_lists

__all__ = ["Dataset", "prepare_dataset"]


@dataclass
class Dataset:
    """Decoded, split data ready for training (labels in index order = sorted folder names)."""

    root: Path
    labels: list[str]
    ok_label: str | None  # None: sorting by class, no good class
    images: np.ndarray  # N x H x W x 3 uint8, exactly prepare_rgb(read_image(file), contract)
    y: np.ndarray  # N label indices
    paths: list[str]
    split_of: np.ndarray  # N split names
    class_weight: dict[int, float]
    fingerprint: str
    report: dict

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and label indices of one split."""
        m = self.split_of == split
        return self.images[m], self.y[m]


def _fingerprint(loaded: Loaded) -> str:
    h = hashlib.sha256()
    for row in sorted(zip(loaded.paths, loaded.labels, loaded.sha256, strict=True)):
        h.update(("\t".join(row) + "\n").encode())
    return h.hexdigest()[:16]


def _check_class_sizes(labels: list[str], loaded: Loaded, found: Counter, minimum: int) -> None:
    used = Counter(loaded.labels)
    small = {lab: used[lab] for lab in labels if used[lab] < minimum}
    if small:
        detail = ", ".join(f"{lab!r}: {n} usable of {found[lab]} files" for lab, n in small.items())
        raise DataError(
            f"too few images to split into train/val/test: {detail}; each class needs at least {minimum} "
            "readable images (see the skipped files above); add images to those folders or remove them")


def _previous_split(config: TrainConfig, run_dir: Path) -> tuple[dict[str, str] | None, str | None]:
    source = Path(config.splits_from) / "splits" if config.splits_from else run_dir / "splits"
    if config.splits_from and read_split_lists(source) is None:
        raise DataError(f"--splits-from {config.splits_from}: no split lists in {source} "
                        "(expected train.txt, val.txt and test.txt); pass a run directory of an earlier run")
    prev = read_split_lists(source)
    return prev, (str(source) if prev is not None else None)


SKIPPED_SHOWN = 20  # more than this and the console gets the first ones; the report keeps every one


def _say_skipped(skipped: list[dict], run_dir: Path) -> None:
    """Name each skipped file on stderr, or the first few and a count when a whole set of them is."""
    shown = skipped if len(skipped) <= SKIPPED_SHOWN else skipped[: SKIPPED_SHOWN // 2]
    for s in shown:
        print(f"warning: skipped {s['path']}: {s['reason']}", file=sys.stderr)
    if len(shown) < len(skipped):
        report = run_dir / "data_report.md"
        print(f"warning: ... and {len(skipped) - len(shown)} more files skipped; {report} lists every one "
              "with its reason", file=sys.stderr)


def prepare_dataset(config: TrainConfig, contract: InputContract, run_dir: Path) -> Dataset:
    """Scan, decode, de-duplicate and split ``config.data``; write splits/ and the data report."""
    scan = scan_folder(config.data)
    ok_label = detect_ok_label(scan.labels, config.ok_label)
    loaded = load_images(scan.root, scan.files, contract, progress=config.verbose)
    skipped = scan.skipped + loaded.skipped
    _say_skipped(skipped, run_dir)
    found = Counter(label for _, label in scan.files)
    _check_class_sizes(scan.labels, loaded, found, config.min_images_per_class)
    groups, dups = duplicate_groups(loaded.sha256, loaded.phash, config.near_duplicate_distance)
    previous, prev_source = _previous_split(config, run_dir)
    split_of = stratified_split(loaded.paths, loaded.labels, groups, seed=config.seed,
                                val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                                previous=previous, given=scan.given)
    write_split_lists(run_dir / "splits", loaded.paths, loaded.labels, split_of)
    y = np.array([scan.labels.index(lab) for lab in loaded.labels], dtype=np.int64)
    ds = Dataset(root=scan.root, labels=scan.labels, ok_label=ok_label, images=loaded.images, y=y,
                 paths=loaded.paths, split_of=np.array(split_of), class_weight={},
                 fingerprint=_fingerprint(loaded), report={})
    ds.report = _report(config, scan, ds, loaded, skipped, dups, found, previous, prev_source)
    ds.class_weight = {i: ds.report["class_weights"][lab] for i, lab in enumerate(ds.labels)}
    for warning in (ds.report["imbalance"]["warning"], ds.report["validation_warning"]):
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    write_report(run_dir, ds.report)
    return ds


def _given_split(given: dict[str, str], config: TrainConfig) -> str | None:
    """How a set that comes split was split, in words; None for a class-per-folder set."""
    if not given:
        return None
    have = sorted(set(given.values()), key=SPLITS.index)
    carved = [f"{s} ({f:.0%} of each class)" for s, f in (("val", config.val_fraction),
                                                        ("test", config.test_fraction)) if s not in have]
    tail = f"; {' and '.join(carved)} carved from train" if carved else ""
    return f"by its folders ({', '.join(have)}){tail}"


def _report(config, scan, ds: Dataset, loaded: Loaded, skipped, dups, found, previous, prev_source) -> dict:
    per_split = {s: dict(Counter(lab for lab, x in zip(loaded.labels, ds.split_of, strict=True) if x == s))
                 for s in SPLITS}
    used = Counter(loaded.labels)
    conflicts = [g for g in dups if len({loaded.labels[i] for i in g["members"]}) > 1]
    missing = sorted(set(previous or {}) - set(loaded.paths))
    rule = ("sorting by class (--ok-label none): every class a label" if ds.ok_label is None else
            "--ok-label" if config.ok_label else "auto: folder name has a word ok/good/pass/normal/...")
    return {
        "data_dir": str(scan.root), "ok_label": ds.ok_label, "ok_label_rule": rule, "labels": ds.labels,
        "fingerprint": ds.fingerprint,
        "classes": {lab: {"files": found[lab], "used": used[lab]} for lab in ds.labels},
        "skipped": skipped, "ignored": scan.ignored,
        "duplicates": {
            "near_duplicate_distance": config.near_duplicate_distance,
            "groups": [{"kind": g["kind"], "paths": [loaded.paths[i] for i in g["members"]],
                        "split": ds.split_of[g["members"][0]]} for g in dups],
            "label_conflicts": [{"paths": [loaded.paths[i] for i in g["members"]]} for g in conflicts],
        },
        "imbalance": imbalance(dict(used), config.imbalance_warn_ratio, config.class_weights),
        # Export places thresholds on val for a false-alarm target; say now if val cannot carry the default.
        "validation_warning": None if ds.ok_label is None else small_split_warning(
            per_split["val"].get(ds.ok_label, 0), DEFAULT_TARGET_FALSE_ALARM_RATE, ds.ok_label),
        "splits": per_split,
        "class_weights": class_weights(per_split["train"], ds.labels, config.class_weights, ds.ok_label),
        "previous_split": {"source": prev_source, "missing": missing},
        "given_split": _given_split(scan.given, config),
    }
