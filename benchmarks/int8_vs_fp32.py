"""Full-integer vs float TFLite latency: ``python -m benchmarks.int8_vs_fp32``.

MobileNetV2 1.0 at 224 px (``--alpha``, ``--size``), converted by the export stage's own TFLite path
(``export.formats_tflite.convert_tflite``: SavedModel -> fp32, and -> int8 with uint8 in/out and
int8-only builtins), then timed with ai-edge-litert through the runtime backend on ``--threads``
(default 2). fp32 and int8 alternate in rounds (``benchmarks.harness.interleaved``) so background
load hits both alike; the reported figure is the ratio of the medians of round medians, of the
bare ``invoke()`` (input already set) and of ``run_one`` (quantize + invoke + dequantize).

Weights: the ImageNet MobileNetV2 backbone from ``../shared/data/weights`` when present
(``--weights auto``), else random init (``none``); latency does not depend on weight values, but
real weights give the int8 calibration realistic activation ranges. Calibration: 32 synthetic
part images. Target: int8 >= 1.3x faster than fp32.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.harness import interleaved, write_result
from runtime.tf_logs import quiet_tensorflow

TARGET = 1.3
SHARED_WEIGHTS = (Path(__file__).resolve().parents[2] / "shared" / "data" / "weights"
                  / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
CACHE = Path("results/.models")


def calibration_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """RGB uint8 synthetic parts (``train.synth`` when importable, else smoothed noise)."""
    import cv2

    rng = np.random.default_rng(seed)
    try:
        from train.synth import render_part

        return np.stack([render_part(rng, None if i % 2 else "scratch", size) for i in range(n)])
    except ImportError:
        return np.stack([cv2.GaussianBlur(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), (5, 5), 0)
                         for _ in range(n)])


def resolve_weights(weights: str) -> str | None:
    """``auto``: the shared ImageNet file if present (alpha 1.0 only), else random init."""
    if weights == "auto":
        return str(SHARED_WEIGHTS) if SHARED_WEIGHTS.is_file() else None
    return None if weights == "none" else weights


def build_models(size: int, alpha: float, weights: str | None, out: Path) -> dict[str, Path]:
    """fp32 and int8 TFLite files of MobileNetV2 (+ 2-class head), cached under ``out``."""
    files = {"fp32": out / "model_fp32.tflite", "int8": out / "model_int8.tflite"}
    if all(f.is_file() for f in files.values()):
        return files
    quiet_tensorflow()
    from benchmarks.models import mobilenet_v2_classifier
    from export.formats_tflite import convert_tflite

    out.mkdir(parents=True, exist_ok=True)
    model = mobilenet_v2_classifier(size, alpha, weights)
    model.export(str(out / "saved_model"), verbose=False)
    np.save(out / "calibration.npy", calibration_images(32, size))
    for precision, path in files.items():
        convert_tflite(str(out / "saved_model"), str(path), precision,
                       str(out / "calibration.npy") if precision == "int8" else None)
    return files


def measure(files: dict[str, Path], threads: int, rounds: int, iters: int, backend: str = "litert") -> dict:
    """Interleaved run_one (and, for LiteRT, bare invoke) timings of the models ``{name: path}``.

    The models take the same input size; ``backend`` is the runtime backend that runs them.
    """
    from runtime.backends import open_backend

    engines = {p: open_backend(f, backend=backend, threads=threads) for p, f in files.items()}
    try:
        image = calibration_images(1, next(iter(engines.values())).input_shape[0], seed=7)[0]
        for engine in engines.values():
            engine.run_one(image)  # leaves a real input set for the bare invoke
        variants = {f"{p}/invoke": e.invoke_only for p, e in engines.items() if hasattr(e, "invoke_only")}
        variants |= {f"{p}/run_one": (lambda e=e: e.run_one(image)) for p, e in engines.items()}
        return interleaved(variants, rounds=rounds, iters=iters)
    finally:
        for engine in engines.values():
            engine.close()


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) the two models, time them, print the table, write results JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.int8_vs_fp32", description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--weights", default="auto", help="auto | none | PATH to a Keras .h5 backbone")
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    weights = resolve_weights(args.weights)
    tag = f"mnv2-{args.alpha:g}-{args.size}-{'imagenet' if weights else 'random'}"
    files = build_models(args.size, args.alpha, weights, CACHE / f"int8_vs_fp32-{tag}")
    timings = measure(files, args.threads, args.rounds, args.iters)
    med = {k: v["median_of_rounds_ms"] for k, v in timings.items()}
    ratio = med["fp32/invoke"] / med["int8/invoke"]
    ratio_run_one = med["fp32/run_one"] / med["int8/run_one"]
    print(f"MobileNetV2 {args.alpha:g} @ {args.size}px, {args.threads} threads, ai-edge-litert, "
          f"weights: {'ImageNet (shared .h5)' if weights else 'random init'}; median of {args.rounds} rounds")
    print(f"{'variant':<16}{'p50 ms':>9}{'p90 ms':>9}{'median-of-rounds ms':>22}")
    for name, t in timings.items():
        print(f"{name:<16}{t['p50']:>9.2f}{t['p90']:>9.2f}{t['median_of_rounds_ms']:>22.2f}")
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"int8 speed-up: {ratio:.2f}x (invoke), {ratio_run_one:.2f}x (run_one); "
          f"{verdict} the {TARGET}x target")
    path = write_result("int8_vs_fp32", {
        "model": tag, "threads": args.threads, "weights": weights or "random init",
        "sizes_bytes": {p: f.stat().st_size for p, f in files.items()}, "timings": timings,
        "speedup_invoke": ratio, "speedup_run_one": ratio_run_one, "target": TARGET,
        "meets_target": ratio >= TARGET}, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
