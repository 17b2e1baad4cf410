"""Build a line-like hard variant of a class-per-folder photo set (``python -m train.hardset``).

Public defect sets are balanced, square and of one size; a line's photos are not. From such a set
this writes one with what a real line brings: one class taken as the good parts (all its photos),
every other class rare (``--min``..``--max`` photos each, 20-40 by default), and every photo
cropped to an elongated frame (2:1 or 1:3, as parts on a belt are) and rescaled to a mixed size.
A defect photo's crop is placed where it keeps the most of what stands out from the photo's
background (a line's photo of a scratch shows the scratch; a random crop can cut it away and leave
a mislabelled photo of plain steel). The good class's crops are placed at random.
The photos a class did not use go to ``holdout/`` (same crops), for figures on unseen parts.

    python -m train.hardset --src ../shared/data/neu_det --good crazing --out data/neu_hard

Writes ``OUT/train/<class>/*.png``, ``OUT/holdout/<class>/*.png`` and ``OUT/hardset.json`` (the
source file, crop box and size of every photo, the seed). Deterministic for a seed. The folder is
built beside ``OUT`` and renamed into place, so an interrupted run leaves no half-written set.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

from runtime.image_io import is_image_path, read_image

ASPECTS = {"2:1": (2, 1), "1:3": (1, 3)}  # width : height


CANDIDATES = 24  # crop positions tried per defect photo


def crop_size(rng: np.random.Generator, width: int, height: int, aspect: tuple[int, int]) -> tuple[int, int]:
    """A ``(w, h)`` of ``aspect`` covering 60-100% of the limiting side."""
    aw, ah = aspect
    limit = min(width / aw, height / ah)  # the largest box of this aspect that fits
    unit = limit * rng.uniform(0.6, 1.0)
    return max(1, int(round(unit * aw))), max(1, int(round(unit * ah)))


def crop_box(rng: np.random.Generator, width: int, height: int, aspect: tuple[int, int]) -> tuple[int, ...]:
    """A random ``(left, top, right, bottom)`` box of ``aspect`` covering 60-100% of the limiting side."""
    w, h = crop_size(rng, width, height, aspect)
    left = int(rng.integers(0, width - w + 1))
    top = int(rng.integers(0, height - h + 1))
    return left, top, left + w, top + h


def salience(rgb: np.ndarray) -> np.ndarray:
    """How far each pixel stands out from the photo's background, beyond the texture's own spread.

    The background is a smooth quadratic surface fitted to the grey levels (it follows uneven
    lighting but cannot follow a streak, a pit or a patch); the distance of the lightly smoothed grey
    level from it, less three robust standard deviations (1.4826 MAD) of that distance, so plain
    texture scores zero and defects do not.
    """
    grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.5)
    residual = grey - _smooth_surface(grey)
    dist = np.abs(residual - np.median(residual))
    return np.maximum(dist - 3 * 1.4826 * np.median(dist), 0)


def _smooth_surface(grey: np.ndarray) -> np.ndarray:
    """The least-squares quadratic surface through ``grey`` (fitted on a coarse grid: it is smooth)."""
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / max(h - 1, 1) - 0.5, xx / max(w - 1, 1) - 0.5
    basis = np.stack([np.ones_like(xx), xx, yy, xx * xx, xx * yy, yy * yy], axis=-1)
    step = max(1, min(h, w) // 50)
    coef, *_ = np.linalg.lstsq(basis[::step, ::step].reshape(-1, 6), grey[::step, ::step].ravel(), rcond=None)
    return basis @ coef.astype(np.float32)


def defect_box(rng: np.random.Generator, rgb: np.ndarray,
               aspect: tuple[int, int]) -> tuple[tuple[int, ...], float]:
    """The box (of a random size, as ``crop_box``) among random positions that keeps the most salience.

    Returns the box and the share of the photo's salience it keeps (1.0 when nothing stands out).
    """
    height, width = rgb.shape[:2]
    w, h = crop_size(rng, width, height, aspect)
    sat = cv2.integral(salience(rgb).astype(np.float64))
    lefts = rng.integers(0, width - w + 1, CANDIDATES)
    tops = rng.integers(0, height - h + 1, CANDIDATES)
    kept = sat[tops + h, lefts + w] - sat[tops, lefts + w] - sat[tops + h, lefts] + sat[tops, lefts]
    best = int(np.argmax(kept))  # first of equals: deterministic for a seed
    total = float(sat[-1, -1])
    share = float(kept[best] / total) if total > 0 else 1.0
    left, top = int(lefts[best]), int(tops[best])
    return (left, top, left + w, top + h), share


def make_variant(rng: np.random.Generator, rgb: np.ndarray, aspect_name: str,
                 keep_defect: bool = False) -> tuple[np.ndarray, dict]:
    """One elongated, rescaled crop of ``rgb`` and the record of how it was made.

    ``keep_defect`` places the crop where it keeps the most of what stands out (``defect_box``).
    """
    how: dict = {"aspect": aspect_name}
    if keep_defect:
        box, how["salience_kept"] = defect_box(rng, rgb, ASPECTS[aspect_name])
    else:
        box = crop_box(rng, rgb.shape[1], rgb.shape[0], ASPECTS[aspect_name])
    crop = rgb[box[1]:box[3], box[0]:box[2]]
    scale = float(rng.uniform(0.75, 1.5))  # mixed sizes: some photos smaller than the source, some larger
    size = (max(8, int(round(crop.shape[1] * scale))), max(8, int(round(crop.shape[0] * scale))))
    out = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return out, {**how, "box": list(box), "size": list(size)}


def _classes(src: Path) -> dict[str, list[Path]]:
    found = {d.name: sorted(p for p in d.iterdir() if is_image_path(p))
             for d in sorted(src.iterdir()) if d.is_dir()}
    return {k: v for k, v in found.items() if v}


def plan(classes: dict[str, list[Path]], good: str, lo: int, hi: int, holdout: int,
         rng: np.random.Generator) -> dict[str, dict[str, list[Path]]]:
    """Which photos of each class go to ``train`` and ``holdout`` (the good class: all to train)."""
    out = {}
    for name, files in classes.items():
        order = [files[i] for i in rng.permutation(len(files))]
        if name == good:
            out[name] = {"train": order, "holdout": []}
            continue
        n = int(rng.integers(lo, hi + 1))
        out[name] = {"train": order[:n], "holdout": order[n:n + holdout]}
    return out


def build(src: Path, out: Path, good: str, lo: int = 20, hi: int = 40, holdout: int = 40,
          seed: int = 0) -> dict:
    """Write the hard variant of ``src`` to ``out`` (see the module docstring); return its record."""
    classes = _classes(src)
    if good not in classes:
        raise SystemExit(f"hardset: no class folder {good!r} in {src}; classes there: {sorted(classes)}. "
                         "Fix: pass --good with one of them.")
    if not 1 <= lo <= hi:
        raise SystemExit(f"hardset: need 1 <= --min <= --max, got {lo} and {hi}")
    rng = np.random.default_rng(seed)
    chosen = plan(classes, good, lo, hi, holdout, rng)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    record = {"source": str(src), "good": good, "seed": seed, "min": lo, "max": hi, "photos": []}
    for name, parts in chosen.items():
        for part, files in parts.items():
            (tmp / part / name).mkdir(parents=True, exist_ok=True)
            for i, path in enumerate(files):
                image, how = make_variant(rng, read_image(path), list(ASPECTS)[i % len(ASPECTS)],
                                          keep_defect=name != good)
                dest = tmp / part / name / f"{path.stem}.png"
                cv2.imwrite(str(dest), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                record["photos"].append({"file": f"{part}/{name}/{dest.name}", "from": path.name, **how})
    (tmp / "hardset.json").write_text(json.dumps(record, indent=1))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.hardset", description=__doc__.split("\n")[0])
    p.add_argument("--src", required=True, type=Path, help="class-per-folder photo set")
    p.add_argument("--good", required=True, help="the class taken as the good parts (all its photos)")
    p.add_argument("--out", required=True, type=Path, help="output folder (replaced if it exists)")
    p.add_argument("--min", type=int, default=20, help="fewest photos of each other class")
    p.add_argument("--max", type=int, default=40, help="most photos of each other class")
    p.add_argument("--holdout", type=int, default=40, help="unused photos per other class kept in holdout/")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    rec = build(a.src, a.out, a.good, a.min, a.max, a.holdout, a.seed)
    counts: dict[str, int] = {}
    for ph in rec["photos"]:
        key = ph["file"].rsplit("/", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    print("\n".join(f"{k}: {v}" for k, v in sorted(counts.items())), file=sys.stderr)
    print(f"train with: python -m train --data {a.out / 'train'} --ok-label {a.good}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
