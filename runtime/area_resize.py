"""Area (box-filter) downscaling: bit-identical to ``cv2.INTER_AREA`` on several cores, or cheap.

For a non-integer scale factor (640x480 -> 224x224 is 2.86 x 2.14) OpenCV's area resize takes a
generic path that it splits into parallel stripes by *output* size (one stripe per 64 Ki output
pixels), so a model-sized output runs on one core: ~2 ms for a VGA frame on the 2-core dev machine,
more than a small model's whole inference. Area resizing is separable and each output row reads a
fixed band of input rows, so the frame can be cut into horizontal bands at output rows whose
source edge falls on a whole input row (``m * H / h`` an integer). Each band then has exactly the
same scale factor as the whole frame (OpenCV's weight tables depend only on it), so resizing the
bands separately, one per core, writes exactly the pixels of a single ``cv2.resize`` call (a test
pins that).

That still leaves ~0.7 ms for a VGA frame on two cores. ``resize_area_bilinear`` (the contract's
``area-bilinear``) is the cheap one: OpenCV's vectorised whole-factor area path, then bilinear.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from math import gcd

import cv2
import numpy as np

# Below this many source pixels a single call is cheaper than handing bands to a thread.
MIN_SOURCE_PIXELS = 150_000

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def band_edges(src_rows: int, dst_rows: int, bands: int) -> list[int]:
    """Output-row edges ``[0, ..., dst_rows]`` of up to ``bands`` bands with whole-row source edges.

    An edge ``m`` is allowed when ``m * src_rows / dst_rows`` is an integer, i.e. ``m`` is a
    multiple of ``dst_rows / gcd(src_rows, dst_rows)``; edges are the allowed rows nearest to an
    even split. Returns ``[0, dst_rows]`` (one band) when no inner edge is allowed.
    """
    step = dst_rows // gcd(src_rows, dst_rows)
    edges = [0]
    for k in range(1, bands):
        m = round(k * dst_rows / bands / step) * step
        if edges[-1] < m < dst_rows:
            edges.append(m)
    return edges + [dst_rows]


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="area-resize")
        return _pool


def _bands_for(image: np.ndarray, width: int, height: int) -> int:
    """How many bands to use: one unless a big frame shrinks by a non-integer factor."""
    src_h, src_w = image.shape[:2]
    cores = min(os.cpu_count() or 1, 4)
    shrinking = src_h >= height and src_w >= width
    integer_factor = src_h % height == 0 and src_w % width == 0  # OpenCV's own fast path
    if cores < 2 or not shrinking or integer_factor or src_h * src_w < MIN_SOURCE_PIXELS:
        return 1
    return cores


def resize_area(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)``, on several cores."""
    bands = _bands_for(image, width, height)
    edges = band_edges(image.shape[0], height, bands)
    if len(edges) == 2:  # one band: a plain call
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    src_h = image.shape[0]
    out = np.empty((height, width) + image.shape[2:], dtype=image.dtype)

    def band(i: int) -> None:
        top, bottom = edges[i], edges[i + 1]
        src = image[top * src_h // height: bottom * src_h // height]
        out[top:bottom] = cv2.resize(src, (width, bottom - top), interpolation=cv2.INTER_AREA)

    pending = [_executor(bands - 1).submit(band, i) for i in range(1, len(edges) - 1)]
    band(0)  # the calling thread takes a band instead of waiting idle
    for future in pending:
        future.result()
    return out


def resize_area_bilinear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area shrinks by whole factors, then bilinear for the factor left (below 2) — after them only.

    First 2x2 halvings while both sides are at least twice the target's (OpenCV vectorises only
    that factor: 1280x720 -> 640x360 in ~0.2 ms), then the area filter by any whole factor an axis
    still has (stretching to another aspect), then bilinear: a 640x480 frame reaches 224 px in
    ~0.15 ms against ~1 ms for one area step. Bilinear over a factor below 2 still lets every
    source pixel weigh in, and after an area step it works on pixels already averaged. An image
    that needs no whole-factor step (a photo near the model's size) gets the area filter, as with
    ``area``: there the finest detail is at stake and the area filter costs little (casting photos,
    300 -> 224 px, lost 3 of 240 test parts with bilinear). When a side is not a multiple of its
    factor, the pixels over (fewer than the factor) are cut evenly from both edges (an odd one from
    the far edge). Training, the export gate and the camera all call this: the same pixels.
    """
    src_shape = image.shape
    while image.shape[0] >= 2 * height and image.shape[1] >= 2 * width:
        image = _shrink_whole(image, 2, 2)
    kx, ky = max(1, image.shape[1] // width), max(1, image.shape[0] // height)
    if kx > 1 or ky > 1:
        image = _shrink_whole(image, kx, ky)
    if image.shape[0] == height and image.shape[1] == width:
        return image
    if image.shape == src_shape:  # no area step yet: the area filter itself
        return resize_area(image, width, height)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def _shrink_whole(image: np.ndarray, kx: int, ky: int) -> np.ndarray:
    """Area shrink by whole factors ``kx`` x ``ky``, the sides first cut to multiples of them."""
    src_h, src_w = image.shape[:2]
    w, h = src_w // kx, src_h // ky
    x0, y0 = (src_w - w * kx) // 2, (src_h - h * ky) // 2
    return cv2.resize(image[y0:y0 + h * ky, x0:x0 + w * kx], (w, h), interpolation=cv2.INTER_AREA)
