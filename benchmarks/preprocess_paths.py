"""Two per-frame shortcuts of the runtime vs the plain code: ``python -m benchmarks.preprocess_paths``.

* area resize of a camera frame to the model size: one ``cv2.resize(INTER_AREA)`` call vs
  ``runtime.area_resize.resize_area`` (the same pixels, cut into row bands over the cores), and
  the contract's default ``area-bilinear`` (``resize_area_bilinear``: area by whole factors, then
  bilinear; other pixels, which training sees too);
* int8 input requantization of a model-sized frame: float arithmetic
  (``runtime.backends.litert.quantize``) vs the 256-entry ``cv2.LUT`` table the backend uses.

Interleaved rounds (``benchmarks.harness.interleaved``); reported as ratios of medians.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from benchmarks.harness import interleaved, write_result
from runtime.area_resize import resize_area, resize_area_bilinear
from runtime.backends.litert import quantization_table, quantize

FRAMES = ((480, 640), (240, 320), (720, 1280))  # camera frame height, width
INPUT_QUANT = (0.9960784316062927, -128)  # a calibrated int8 model's input (brightest pixel 254)


def _frame(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (*shape, 3), dtype=np.uint8), (5, 5), 0)


def resize_rows(size: int, rounds: int, iters: int) -> list[dict]:
    """Per frame size: one OpenCV call vs the banded resize, and that they agree bit for bit."""
    rows = []
    for shape in FRAMES:
        frame = _frame(shape)
        same = np.array_equal(cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA),
                              resize_area(frame, size, size))
        t = interleaved({"cv2": lambda f=frame: cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA),
                         "banded": lambda f=frame: resize_area(f, size, size),
                         "area_bilinear": lambda f=frame: resize_area_bilinear(f, size, size)},
                        rounds=rounds, iters=iters)
        rows.append({"frame": f"{shape[1]}x{shape[0]}", "cv2_ms": t["cv2"]["median_of_rounds_ms"],
                     "banded_ms": t["banded"]["median_of_rounds_ms"],
                     "area_bilinear_ms": t["area_bilinear"]["median_of_rounds_ms"], "identical": same})
    return rows


def quantize_row(size: int, rounds: int, iters: int) -> dict:
    """Float requantization vs the table lookup on one model-sized RGB frame."""
    image = _frame((size, size))
    dtype = np.dtype(np.int8)
    table = quantization_table(INPUT_QUANT, dtype)
    t = interleaved({"float": lambda: quantize(image, INPUT_QUANT, dtype),
                     "lut": lambda: cv2.LUT(image, table)}, rounds=rounds, iters=iters)
    return {"float_ms": t["float"]["median_of_rounds_ms"], "lut_ms": t["lut"]["median_of_rounds_ms"],
            "identical": bool(np.array_equal(quantize(image, INPUT_QUANT, dtype), cv2.LUT(image, table)))}


def main(argv: list[str] | None = None) -> int:
    """Time both shortcuts, print them, write results/preprocess_paths-*.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.preprocess_paths",
                                description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=224, help="model input side in pixels")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    resize = resize_rows(args.size, args.rounds, args.iters)
    quant = quantize_row(args.size, args.rounds, args.iters)
    print(f"area resize to {args.size}x{args.size} (ms, median of {args.rounds} interleaved rounds)")
    for r in resize:
        print(f"  {r['frame']:>9}  cv2 {r['cv2_ms']:.3f}  banded {r['banded_ms']:.3f}  "
              f"speed-up {r['cv2_ms'] / r['banded_ms']:.2f}x  identical={r['identical']}  "
              f"area-bilinear {r['area_bilinear_ms']:.3f} ({r['cv2_ms'] / r['area_bilinear_ms']:.1f}x)")
    print(f"int8 input of {args.size}x{args.size}x3: float {quant['float_ms']:.3f} ms, "
          f"LUT {quant['lut_ms']:.3f} ms ({quant['float_ms'] / quant['lut_ms']:.1f}x), "
          f"identical={quant['identical']}")
    payload = {"size": args.size, "resize": resize, "quantize": quant}
    path = write_result("preprocess_paths", payload, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
