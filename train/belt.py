"""A moving belt: round parts crossing a 640x480 camera view, with the truth of when each is seen.

What line mode's presence detector (:mod:`runtime.presence`) is tested and benchmarked on.

Each part is a textured disc with a bore (a casting seen from above), dark or bright against the
belt, travelling left to right at ``speed`` pixels per frame; ``gaps`` are the edge-to-edge
distances between consecutive parts (0: touching). Lighting drifts by ``drift`` (a slow sine),
frames carry sensor noise and a short-exposure motion blur. The truth lists, per part, the frames
in which it covers the inspection line (the middle column of the view).

Imports only numpy and OpenCV (never TensorFlow): tests and benchmarks use it.
"""

from __future__ import annotations

import cv2
import numpy as np

BELT_GREY = 110.0


def disc(diameter: int, shade: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(BGR texture, mask) of one part."""
    tex = (shade + rng.normal(0, 18, (diameter, diameter, 1))).clip(0, 255).repeat(3, axis=2)
    mask = np.zeros((diameter, diameter), np.uint8)
    c = diameter // 2
    cv2.circle(mask, (c, c), c - 1, 255, -1)
    cv2.circle(mask, (c, c), diameter // 7, 0, -1)  # the bore
    return tex.astype(np.float32), mask > 0


Sprite = tuple[np.ndarray, np.ndarray]  # (HxWx3 float BGR texture, HxW bool or float alpha)


def moving_belt(gaps: list[int], diameter: int = 120, speed: int = 12, seed: int = 0, drift: float = 0.3,
                noise: float = 4.0, size: tuple[int, int] = (640, 480), lead: int = 160,
                tail: int = 200, shades: tuple[float, ...] = (45.0, 190.0),
                light_step: tuple[int, float] | None = None) -> tuple[list[np.ndarray], list[list[int]]]:
    """(frames, truth) of ``len(gaps) + 1`` discs; ``truth[i]`` = the frames part i covers the line.

    ``light_step=(frame, factor)`` multiplies the lighting by ``factor`` from that frame on (a door
    opened, a lamp switched) on top of the drift.
    """
    rng = np.random.default_rng(seed)
    sprites = [disc(diameter, float(rng.choice(shades)), rng) for _ in range(len(gaps) + 1)]
    return belt_frames(sprites, gaps, speed, rng, drift=drift, noise=noise, size=size, lead=lead, tail=tail,
                       light_step=light_step)


def belt_frames(sprites: list[Sprite], gaps: list[int], speed: int, rng: np.random.Generator, *,
                drift: float = 0.3, noise: float = 4.0, size: tuple[int, int] = (640, 480), lead: int = 160,
                tail: int = 200, belt_grey: float = BELT_GREY, light_step: tuple[int, float] | None = None,
                ) -> tuple[list[np.ndarray], list[list[int]]]:
    """Frames of ``sprites`` travelling left to right, vertically centred, ``gaps`` px apart."""
    width, height = size
    starts = [-lead - sprites[0][0].shape[1]]  # left edge of each part at frame 0
    for gap, (tex, _) in zip(gaps, sprites[1:], strict=True):
        starts.append(starts[-1] - tex.shape[1] - int(gap))
    n = int((width / 2 - starts[-1] + tail) / speed)
    frames, truth = [], [[] for _ in starts]
    line = width // 2
    for f in range(n):
        frame = np.full((height, width, 3), belt_grey, np.float32)
        for i, ((tex, alpha), start) in enumerate(zip(sprites, starts, strict=True)):
            x0, (h, w) = start + f * speed, tex.shape[:2]
            _paste(frame, tex, alpha, x0, height // 2 - h // 2)
            if x0 <= line < x0 + w:
                truth[i].append(f)
        frame = cv2.blur(frame, (speed // 6 * 2 + 1, 1))  # exposure a third of the frame interval
        light = 1 + drift * np.sin(2 * np.pi * f / 90)
        if light_step and f >= light_step[0]:
            light *= light_step[1]
        frame = frame * light + rng.normal(0, noise, frame.shape)
        frames.append(frame.clip(0, 255).astype(np.uint8))
    return frames, truth


def _paste(frame: np.ndarray, tex: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    h, w = tex.shape[:2]
    lo, hi = max(0, x0), min(frame.shape[1], x0 + w)
    if lo >= hi:
        return
    a = alpha[:, lo - x0:hi - x0].astype(np.float32)[..., None]
    region = frame[y0:y0 + h, lo:hi]
    region[:] = region * (1 - a) + tex[:, lo - x0:hi - x0] * a


def presence_windows(detector, frames: list[np.ndarray]) -> list[tuple[int, int]]:
    """(first, last) frame of each part the detector delimits."""
    windows, current = [], None
    for i, frame in enumerate(frames):
        present = detector.update(frame)
        if current is not None and (not present or detector.started):
            windows.append(current)
            current = None
        if present:
            current = (current[0], i) if current else (i, i)
    return windows + ([current] if current else [])
