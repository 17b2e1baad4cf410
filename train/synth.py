"""The built-in dataset: synthetic factory-line photos of machined parts on a conveyor.

``python -m train.synth --out data/synthetic`` writes ``ok/`` plus ``defect/`` (binary) or one
folder per defect type (``--labels types``). Every image is drawn with OpenCV from its own seeded
generator (``seed``, index), so a dataset is byte-for-byte reproducible and any single image can be
re-rendered. A part is a disc, gear or washer with metal shading, machining rings, a cast shadow
and noise, at a random position/rotation/scale under random lighting and blur. Defects (scratch,
crack, pit, contamination) vary in size and contrast with a ``strength`` drawn from
``[min_strength, max_strength]`` (default 0.8..2: the faint, thin ones are hard at 64 px; a
range like 1.5..2.5 gives an easy set, 0.3..1 a hard one).

This module must not import TensorFlow: tests and the runtime demo use it.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from train.errors import DataError

DEFECT_TYPES = ("scratch", "crack", "pit", "contamination")
SHAPES = ("disc", "gear", "washer")
LABEL_MODES = ("binary", "types")
OK_LABEL = "ok"
MANIFEST = "synth.json"
# Bump when the drawing changes, so that a stale dataset on disk is regenerated.
GENERATOR_VERSION = 3


@dataclass(frozen=True)
class SynthConfig:
    """Every default of the generator, defined once."""

    count: int = 3000  # images in total
    size: int = 96  # square image side in pixels
    seed: int = 0
    labels: str = "binary"  # "binary": ok/defect, "types": ok + one folder per defect type
    ok_fraction: float = 0.5  # share of good parts; defects share the rest equally by type
    min_strength: float = 0.8  # defect size/contrast drawn from [min_strength, max_strength]
    max_strength: float = 2.0  # bigger values: bolder defects (an easy set); smaller: subtler ones
    defect_types: tuple[str, ...] = DEFECT_TYPES  # which defects to draw (a subset makes an easier set)
    jpeg_quality: int = 92


@dataclass(frozen=True)
class _Part:
    cx: float
    cy: float
    r: float  # outer radius
    hole: float  # inner radius (0 = solid)
    angle: float
    shape: str


# ---------------------------------------------------------------------------------------- drawing
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return x, y


def _conveyor(rng: np.random.Generator, size: int) -> np.ndarray:
    """A woven belt: dark base, fine stripes, grain, sometimes a bright guide rail."""
    x, y = _grid(size)
    theta = rng.uniform(-0.2, 0.2)  # weave runs roughly across the image
    period = rng.uniform(3.0, 7.0) * size / 128
    stripes = rng.uniform(3, 8) * np.sin(2 * np.pi * (x * math.sin(theta) + y * math.cos(theta)) / period)
    grain = cv2.GaussianBlur(rng.normal(0, 7, (size, size)).astype(np.float32), (0, 0), 1.2)
    bg = (rng.uniform(40, 95) + stripes + grain)[..., None] * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    if rng.random() < 0.6:
        band = int(size * rng.uniform(0.04, 0.09))
        rail = rng.uniform(120, 170)
        if rng.random() < 0.5:
            bg[:band] = rail + grain[:band, :, None]
        else:
            bg[size - band:] = rail + grain[size - band:, :, None]
    return bg.astype(np.float32)


def _place(rng: np.random.Generator, size: int) -> _Part:
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    r = size * rng.uniform(0.27, 0.36)
    hole = {"disc": 0.0, "gear": rng.uniform(0.15, 0.25), "washer": rng.uniform(0.30, 0.42)}[shape] * r
    c = size / 2 + rng.uniform(-0.11, 0.11, 2) * size
    return _Part(float(c[0]), float(c[1]), float(r), float(hole), float(rng.uniform(0, 2 * np.pi)), shape)


def _outline(rng: np.random.Generator, part: _Part, size: int) -> np.ndarray:
    """Alpha mask (float 0..1) of the part body, holes excluded, anti-aliased."""
    m = np.zeros((size, size), np.uint8)
    s = 4  # fixed-point sub-pixel bits for cv2 drawing
    centre = (int(part.cx * (1 << s)), int(part.cy * (1 << s)))
    if part.shape == "gear":
        teeth = int(rng.integers(8, 15))
        angles = part.angle + np.arange(teeth * 4) * (2 * np.pi / (teeth * 4))
        radii = np.tile([part.r, part.r, part.r * 0.84, part.r * 0.84], teeth)
        pts = np.stack([part.cx + radii * np.cos(angles), part.cy + radii * np.sin(angles)], 1)
        cv2.fillPoly(m, [np.round(pts * (1 << s)).astype(np.int32)], 255, cv2.LINE_AA, s)
    else:
        cv2.circle(m, centre, int(part.r * (1 << s)), 255, -1, cv2.LINE_AA, s)
    if part.hole > 0:
        cv2.circle(m, centre, int(part.hole * (1 << s)), 0, -1, cv2.LINE_AA, s)
    return m.astype(np.float32) / 255.0


def _metal(rng: np.random.Generator, part: _Part, size: int) -> tuple[np.ndarray, float]:
    """Shaded metal surface for the whole frame (masked later); returns it and the light angle."""
    x, y = _grid(size)
    dx, dy = x - part.cx, y - part.cy
    dist = np.sqrt(dx * dx + dy * dy) / part.r
    light = rng.uniform(0, 2 * np.pi)
    directional = 1 + rng.uniform(0.1, 0.3) * (dx * math.cos(light) + dy * math.sin(light)) / part.r
    bevel = 1 - 0.18 * np.clip(dist, 0, 1) ** 6  # edges turn away from the light
    rings = rng.uniform(1.5, 5) * np.sin(2 * np.pi * dist * part.r / rng.uniform(2.0, 4.0))
    grain = cv2.GaussianBlur(rng.normal(0, 5, (size, size)).astype(np.float32), (0, 0), 0.8)
    grey = rng.uniform(120, 185) * directional * bevel + rings + grain  # headroom for bright defects
    return grey[..., None] * rng.uniform(0.93, 1.07, 3).astype(np.float32), light


def _shadow(part_alpha: np.ndarray, light: float, size: int) -> np.ndarray:
    shift = size * 0.03
    mat = np.float32([[1, 0, -shift * math.cos(light)], [0, 1, -shift * math.sin(light)]])
    moved = cv2.warpAffine(part_alpha, mat, (size, size))
    return cv2.GaussianBlur(moved, (0, 0), size * 0.02)


# ---------------------------------------------------------------------------------------- defects
def _spot_on_body(rng: np.random.Generator, part: _Part, lo: float = 0.15, hi: float = 0.78) -> np.ndarray:
    """A random point on the solid metal (outside the hole, inside the gear root)."""
    inner = part.hole / part.r + lo
    rad = part.r * rng.uniform(min(inner, hi - 0.05), hi)
    ang = rng.uniform(0, 2 * np.pi)
    return np.array([part.cx + rad * math.cos(ang), part.cy + rad * math.sin(ang)])


def _stroke(points: np.ndarray, thickness: int, size: int) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    cv2.polylines(m, [np.round(points * 16).astype(np.int32)], False, 255, thickness, cv2.LINE_AA, 4)
    return m.astype(np.float32) / 255.0


def _scratch(rng, img, body, part, size, s) -> None:
    start = _spot_on_body(rng, part)
    length = part.r * rng.uniform(0.5, 1.0) * (0.6 + 0.4 * s)
    ang = rng.uniform(0, 2 * np.pi)
    bend = rng.uniform(-0.4, 0.4)
    t = np.linspace(0, 1, 8)[:, None]
    dirs = np.stack([np.cos(ang + bend * t[:, 0]), np.sin(ang + bend * t[:, 0])], 1)
    pts = start + np.cumsum(dirs * length / 8, 0)
    thick = max(1, int(round(size / 64 * rng.uniform(1.0, 1.8) * (0.6 + 0.4 * s))))
    sign = 1 if rng.random() < 0.3 else -1  # mostly dark grooves; some show fresh bright metal
    img += (sign * rng.uniform(50, 100) * s) * (_stroke(pts, thick, size) * body)[..., None]


def _crack(rng, img, body, part, size, s) -> None:
    ang = rng.uniform(0, 2 * np.pi)
    r0 = part.r * 0.8 if part.shape == "gear" else part.r * 0.97
    p = np.array([part.cx + r0 * math.cos(ang), part.cy + r0 * math.sin(ang)])
    heading = ang + np.pi + rng.uniform(-0.5, 0.5)  # run inwards from the rim
    length = part.r * rng.uniform(0.4, 0.7) * (0.6 + 0.4 * s)
    n = int(rng.integers(6, 11))
    pts = [p]
    for _ in range(n):
        heading += rng.uniform(-0.7, 0.7)
        p = p + length / n * np.array([math.cos(heading), math.sin(heading)])
        pts.append(p)
    alpha = _stroke(np.array(pts), max(1, int(round(size / 64 * (0.8 + 0.6 * s)))), size)
    if rng.random() < 0.5:  # a side branch
        k = int(rng.integers(2, n))
        b = pts[k] + length / 3 * np.array([math.cos(heading + 0.9), math.sin(heading + 0.9)])
        alpha = np.maximum(alpha, _stroke(np.array([pts[k], b]), max(1, size // 96), size))
    img -= (rng.uniform(80, 130) * s) * (alpha * body)[..., None]


def _pit(rng, img, body, part, size, s) -> None:
    for _ in range(int(rng.integers(1, 4))):
        c = _spot_on_body(rng, part)
        rad = max(1.0, size * rng.uniform(0.025, 0.045) * (0.6 + 0.8 * s))
        m = np.zeros((size, size), np.uint8)
        cv2.circle(m, tuple(np.round(c * 16).astype(int)), int(rad * 16), 255, -1, cv2.LINE_AA, 4)
        hole = m.astype(np.float32) / 255.0 * body
        rim = np.clip(np.roll(hole, (1, 1), (0, 1)) - hole, 0, 1)  # lit lower-right lip of the pit
        img -= (rng.uniform(70, 120) * s) * hole[..., None]
        img += (rng.uniform(20, 50) * s) * rim[..., None]


# RGB stain colours: rust, oil, coolant residue, grease.
_STAINS = np.float32([[150, 80, 40], [40, 35, 30], [95, 120, 60], [170, 150, 90]])


def _contamination(rng, img, body, part, size, s) -> None:
    c = _spot_on_body(rng, part, hi=0.7)
    rad = part.r * rng.uniform(0.15, 0.28) * (0.6 + 0.4 * s)
    m = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(3, 7))):
        off = c + rng.normal(0, rad * 0.5, 2)
        axes = (max(1, int(rad * rng.uniform(0.4, 1.0))), max(1, int(rad * rng.uniform(0.3, 0.8))))
        cv2.ellipse(m, tuple(np.round(off).astype(int)), axes, rng.uniform(0, 180), 0, 360, 255, -1,
                    cv2.LINE_AA)
    alpha = cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), max(0.6, size / 128)) * body
    alpha = np.minimum(1.0, alpha * rng.uniform(0.55, 0.9) * (0.5 + 0.5 * s))
    colour = _STAINS[int(rng.integers(len(_STAINS)))]
    img *= 1 - alpha[..., None]
    img += alpha[..., None] * colour


_DEFECTS = {"scratch": _scratch, "crack": _crack, "pit": _pit, "contamination": _contamination}


def _finish(rng: np.random.Generator, img: np.ndarray, size: int) -> np.ndarray:
    """Camera effects: exposure, white balance, focus blur, sensor noise."""
    img = img * rng.uniform(0.8, 1.2) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.9) * size / 128)
    img = img + rng.normal(0, rng.uniform(1.5, 4.5), img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_part(rng: np.random.Generator, defect: str | None, size: int, *,
                strength: float | None = None, min_strength: float = SynthConfig.min_strength,
                max_strength: float = SynthConfig.max_strength) -> np.ndarray:
    """Draw one part on a conveyor background: ``size x size x 3`` RGB uint8.

    ``defect`` is None for a good part or one of :data:`DEFECT_TYPES`. ``strength`` (> 0) scales
    the defect's size and contrast; by default it is drawn from ``[min_strength, max_strength]``.
    """
    return render_part_and_mask(rng, defect, size, strength=strength, min_strength=min_strength,
                                max_strength=max_strength)[0]


def render_part_and_mask(rng: np.random.Generator, defect: str | None, size: int, *,
                         strength: float | None = None, min_strength: float = SynthConfig.min_strength,
                         max_strength: float = SynthConfig.max_strength) -> tuple[np.ndarray, np.ndarray]:
    """:func:`render_part`'s image and the part's own outline: float alpha, 0 on the belt and in holes.

    The outline is what the generator drew, so a part can be lifted off its photo exactly, defects on
    its rim included (the moving belt of :mod:`train.conveyor` carries parts cut out this way).
    """
    if defect is not None and defect not in _DEFECTS:
        raise ValueError(f"defect must be None or one of {DEFECT_TYPES}, got {defect!r}")
    part = _place(rng, size)
    body = _outline(rng, part, size)
    metal, light = _metal(rng, part, size)
    bg = _conveyor(rng, size) * (1 - 0.5 * _shadow(body, light, size))[..., None]
    # Separate streams for the defect and the camera: the same seed renders the same part, lighting
    # and noise with or without a defect, so the two images differ only where the defect is.
    defect_rng, camera_rng = rng.spawn(2)
    if defect is not None:
        s = float(strength) if strength is not None else float(defect_rng.uniform(min_strength, max_strength))
        _DEFECTS[defect](defect_rng, metal, body, part, size, s)
    img = bg * (1 - body[..., None]) + metal * body[..., None]
    return _finish(camera_rng, img, size), body


def part_and_mask(data_dir: str | Path, rel: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Re-render image ``rel`` of a dataset this generator wrote: ``(RGB uint8, part alpha)``.

    None when ``data_dir`` is not such a dataset, was written by another generator version, or
    ``rel`` is not one of its files: the caller then has only the photo.
    """
    try:
        meta = json.loads((Path(data_dir) / MANIFEST).read_text())
        cfg = meta["config"]
        index = meta["files"].index(rel)
    except (OSError, ValueError, KeyError):
        return None
    if meta.get("generator_version") != GENERATOR_VERSION:
        return None
    kind = Path(rel).stem.rsplit("_", 1)[0]  # files are named <defect type or ok>_<index>.jpg
    rng = np.random.default_rng([cfg["seed"], index])
    return render_part_and_mask(rng, None if kind == OK_LABEL else kind, cfg["size"],
                                min_strength=cfg["min_strength"], max_strength=cfg["max_strength"])


# ------------------------------------------------------------------------------------- the dataset
def _plan(cfg: SynthConfig) -> list[tuple[str, str | None]]:
    """(folder label, defect type or None) for every image index, in a fixed order."""
    n_ok = int(round(cfg.count * cfg.ok_fraction))
    plan: list[tuple[str, str | None]] = [(OK_LABEL, None)] * n_ok
    for j in range(cfg.count - n_ok):
        kind = cfg.defect_types[j % len(cfg.defect_types)]
        plan.append(("defect" if cfg.labels == "binary" else kind, kind))
    return plan


def _validate(cfg: SynthConfig) -> None:
    if cfg.labels not in LABEL_MODES:
        raise DataError(f"synth: labels must be one of {LABEL_MODES}, got {cfg.labels!r}")
    if not 0 < cfg.ok_fraction < 1:
        raise DataError(f"synth: ok_fraction must be between 0 and 1 (exclusive), got {cfg.ok_fraction}")
    unknown = sorted(set(cfg.defect_types) - set(DEFECT_TYPES))
    if unknown or not cfg.defect_types:
        raise DataError(f"synth: defect_types must be a non-empty subset of {DEFECT_TYPES}, "
                        f"got {cfg.defect_types}")
    n_classes = 2 if cfg.labels == "binary" else 1 + len(cfg.defect_types)
    if cfg.count < 10 * n_classes:
        need = 10 * n_classes
        raise DataError(f"synth: count must be at least {need} for {n_classes} classes (so that each can "
                        f"be split), got {cfg.count}; pass --count {need} or more")
    if cfg.size < 32:
        raise DataError(f"synth: size must be >= 32 px, got {cfg.size}")
    if not 0 < cfg.min_strength <= cfg.max_strength <= 3:
        raise DataError(f"synth: need 0 < min_strength <= max_strength <= 3, got {cfg.min_strength} "
                        f"and {cfg.max_strength}")


def _up_to_date(out: Path, meta: dict) -> bool:
    try:
        old = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return old.get("config") == meta["config"] and all((out / f).is_file() for f in old.get("files", []))


def generate(out: str | Path, count: int = SynthConfig.count, size: int = SynthConfig.size,
             seed: int = SynthConfig.seed, labels: str = SynthConfig.labels, *,
             ok_fraction: float = SynthConfig.ok_fraction,
             min_strength: float = SynthConfig.min_strength, max_strength: float = SynthConfig.max_strength,
             defect_types: tuple[str, ...] | list[str] = DEFECT_TYPES, force: bool = False) -> Path:
    """Write the dataset to ``out/<label>/*.jpg`` plus ``out/synth.json``; return ``out``.

    Deterministic for a seed. Skips the work when ``out`` already holds the same dataset
    (unless ``force``); a folder this generator wrote earlier with other settings is replaced.
    """
    cfg = SynthConfig(count=count, size=size, seed=seed, labels=labels, ok_fraction=ok_fraction,
                      min_strength=min_strength, max_strength=max_strength, defect_types=tuple(defect_types))
    _validate(cfg)
    out = Path(out)
    meta = {"generator_version": GENERATOR_VERSION,
            "config": {**asdict(cfg), "defect_types": list(cfg.defect_types), "version": GENERATOR_VERSION}}
    if not force and _up_to_date(out, meta):
        return out
    _clear_previous(out)
    files, counts = [], {}
    for i, (label, kind) in enumerate(_plan(cfg)):
        img = render_part(np.random.default_rng([cfg.seed, i]), kind, cfg.size, min_strength=cfg.min_strength,
                          max_strength=cfg.max_strength)
        rel = f"{label}/{kind or OK_LABEL}_{i:05d}.jpg"
        (out / label).mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
        (out / rel).write_bytes(buf.tobytes())
        files.append(rel)
        counts[label] = counts.get(label, 0) + 1
    meta.update(counts=counts, files=files)
    (out / MANIFEST).write_text(json.dumps(meta, indent=1) + "\n")
    return out


def _clear_previous(out: Path) -> None:
    """Remove class folders that an earlier run of this generator wrote (never other folders)."""
    try:
        old = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return
    for label in old.get("counts", {}):
        if (out / label).is_dir():
            shutil.rmtree(out / label)


def main(argv: list[str] | None = None) -> int:
    """``python -m train.synth``: parse the flags and call :func:`generate`."""
    d = SynthConfig()
    p = argparse.ArgumentParser(prog="python -m train.synth", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="data/synthetic", help="output folder (default: %(default)s)")
    p.add_argument("--count", type=int, default=d.count, help="number of images (default: %(default)s)")
    p.add_argument("--size", type=int, default=d.size, help="image side in px (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    p.add_argument("--labels", choices=LABEL_MODES, default=d.labels,
                   help="binary: ok/defect; types: ok + one class per defect type (default: %(default)s)")
    p.add_argument("--ok-fraction", type=float, default=d.ok_fraction, help="share of good parts")
    p.add_argument("--min-strength", type=float, default=d.min_strength,
                   help="weakest defect (default: %(default)s)")
    p.add_argument("--max-strength", type=float, default=d.max_strength,
                   help="strongest defect; up to 3 for an easy set with bold defects (default: %(default)s)")
    p.add_argument("--defect-types", default=",".join(d.defect_types),
                   help="comma-separated subset of the defect types (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="regenerate even if the folder is up to date")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        out = generate(a.out, a.count, a.size, a.seed, a.labels, ok_fraction=a.ok_fraction,
                       min_strength=a.min_strength, max_strength=a.max_strength,
                       defect_types=tuple(t.strip() for t in a.defect_types.split(",") if t.strip()),
                       force=a.force)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = json.loads((out / MANIFEST).read_text())["counts"]
    print(f"synthetic dataset in {out}: {counts} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
