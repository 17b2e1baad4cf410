"""Bundle-contract inputs for a benchmark: real test photos where the run is reachable, else rendered parts.

The top-1 check needs images the model has an opinion about: the run's own test split (from the
bundle's provenance) when this machine has it, otherwise synthetic parts (``train.synth``), otherwise
smooth noise. Which one was used is recorded, because agreement on noise means less.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from runtime.bundle import Bundle
from runtime.errors import EdgeFlagError
from runtime.image_io import read_image
from runtime.preprocess import prepare_bgr, prepare_rgb
from runtime.split_file import read_split_file


def test_photos(bundle: Bundle, n: int) -> list[np.ndarray]:
    """Up to ``n`` RGB test-split photos of the bundle's run, spread over its classes (may be empty)."""
    prov = bundle.meta.get("provenance", {})
    run_dir, data_dir = Path(prov.get("run_dir", "")), Path(prov.get("data_dir", ""))
    split = run_dir / "splits" / "test.txt"
    if not prov or not split.is_file():
        return []
    try:
        items = read_split_file(split, EdgeFlagError)
    except EdgeFlagError:
        return []
    by_label: dict[str, list[str]] = {}
    for rel, label in items:
        by_label.setdefault(label, []).append(rel)
    order = [
        rels[i]
        for i in range(max(map(len, by_label.values()), default=0))
        for rels in by_label.values()
        if i < len(rels)
    ]  # round-robin over classes
    out = []
    for rel in order:
        try:
            out.append(read_image(data_dir / rel))
        except EdgeFlagError:
            continue
        if len(out) == n:
            break
    return out


def rendered_frames(n: int, shape: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """BGR frames of ``shape`` (h, w) showing synthetic parts (``train.synth``), or smooth noise."""
    rng = np.random.default_rng(seed)
    try:
        from train.synth import render_part
    except ImportError:  # a device without the train package
        return [
            cv2.GaussianBlur(rng.integers(0, 255, (*shape, 3), dtype=np.uint8), (5, 5), 0) for _ in range(n)
        ]
    side = min(shape)
    parts = [
        cv2.cvtColor(render_part(rng, None if i % 2 else "scratch", side), cv2.COLOR_RGB2BGR)
        for i in range(n)
    ]
    return [cv2.copyMakeBorder(p, 0, shape[0] - side, 0, shape[1] - side, cv2.BORDER_REFLECT) for p in parts]


def contract_inputs(bundle: Bundle, n: int = 8) -> tuple[list[np.ndarray], str]:
    """``n`` RGB uint8 images prepared by the runtime's own preprocessing, and where they came from."""
    photos = test_photos(bundle, n)
    if len(photos) == n:
        return [prepare_rgb(p, bundle.contract) for p in photos], "run test split"
    c = bundle.contract
    return [prepare_bgr(f, c) for f in rendered_frames(n, (c.height, c.width))], "rendered synthetic parts"


def camera_frames(bundle: Bundle, n: int, shape: tuple[int, int]) -> list[np.ndarray]:
    """``n`` camera-sized BGR frames (the test photos letterboxed into ``shape``, or rendered parts)."""
    photos = test_photos(bundle, n)
    if len(photos) < n:
        return rendered_frames(n, shape)
    return [
        cv2.cvtColor(cv2.resize(p, (shape[1], shape[0]), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
        for p in photos
    ]
