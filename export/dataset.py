"""Pixels for calibration and the gate, decoded exactly as the device decodes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.errors import RunDirError
from export.run_dir import RunInfo
from runtime.errors import ImageReadError
from runtime.image_io import read_image
from runtime.preprocess import prepare_rgb


def load_pixels(run: RunInfo, items: list[tuple[Path, str]]) -> tuple[np.ndarray, np.ndarray]:
    """``(N,H,W,3) uint8`` model inputs and ``(N,)`` label indices for ``(path, label)`` items.

    Uses ``runtime.image_io.read_image`` + ``runtime.preprocess.prepare_rgb``: the same code the
    camera loop runs, so calibration and gate numbers are what the device will see.
    """
    images, failed = [], []
    for path, _ in items:
        try:
            images.append(prepare_rgb(read_image(path), run.contract))
        except ImageReadError as exc:
            failed.append(f"{exc.path} ({exc.reason})")
    if failed:
        raise RunDirError(f"{len(failed)} image(s) listed in the run's splits cannot be read, e.g. "
                          f"{failed[:3]}. The data changed since training: restore {run.data_dir} "
                          "or re-run training")
    h, w = run.contract.height, run.contract.width
    x = np.stack(images) if images else np.zeros((0, h, w, 3), np.uint8)
    y = np.array([run.labels.index(label) for _, label in items], dtype=np.int64)
    return x, y


def calibration_items(items: list[tuple[Path, str]], size: int, seed: int = 0) -> list[tuple[Path, str]]:
    """Up to ``size`` items, deterministic, alternating over classes.

    Round-robin over shuffled per-class lists keeps a rare defect class represented: calibrating
    only on "ok" parts would clip the activations that defects produce.
    """
    rng = np.random.default_rng(seed)
    by_class: dict[str, list] = {}
    for item in items:
        by_class.setdefault(item[1], []).append(item)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in sorted(by_class.items())]
    picked: list[tuple[Path, str]] = []
    depth = 0
    while len(picked) < size and any(depth < len(q) for q in queues):
        picked += [q[depth] for q in queues if depth < len(q)][: size - len(picked)]
        depth += 1
    return picked
