"""What the float ops of an int8 artifact cost: ``python -m benchmarks.int8_float_ops --bundle B``.

``export.int8_fallback`` (TFLite) and ``export.onnx_fallback`` (ONNX) keep an op float when its int8
error is far beyond rounding. This times the bundle's ``--format`` (tflite-int8, onnx-int8) against a
fully integer conversion of the same run (``float_fallback="off"``, the same calibration images and
settings), both through the runtime's backend on ``--threads`` (LiteRT, ONNX Runtime), interleaved in
rounds (``benchmarks.harness.interleaved``) so background load hits both alike. The figure is the
ratio of the medians of round medians of ``run_one`` and, for LiteRT, of the bare ``invoke()``.
Needs the run the bundle came from (``provenance.run_dir``) for its SavedModel and training photos,
and for ONNX the bundle's ``model_fp32.onnx``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.harness import write_result
from benchmarks.int8_vs_fp32 import measure
from runtime.tf_logs import quiet_tensorflow

ARTIFACTS = {"tflite-int8": ("model_int8.tflite", "litert"), "onnx-int8": ("model_int8.onnx", "onnxruntime")}


def fully_integer(bundle: Path, out: Path, name: str = "tflite-int8") -> Path:
    """The bundle's run converted to ``name`` with every op integer, calibrated as export calibrates."""
    from export.dataset import calibration_items, load_pixels
    from export.run_dir import load_run

    doc = json.loads((bundle / "bundle.json").read_text())
    entry = next(a for a in doc["artifacts"] if a["name"] == name)
    run = load_run(doc["provenance"]["run_dir"])
    images, _ = load_pixels(run, calibration_items(run.nonempty_split("train"),
                                                   int(entry["settings"]["calibration_size"]), 0))
    out.mkdir(parents=True, exist_ok=True)
    if name == "onnx-int8":
        return _onnx_integer_only(bundle, entry["settings"], images, out)
    from export.formats_tflite import convert_tflite

    np.save(out / "calibration.npy", images)
    path = out / "model_int8_integer_only.tflite"
    convert_tflite(str(run.file("saved_model")), str(path), "int8", str(out / "calibration.npy"), "off")
    return path


def _onnx_integer_only(bundle: Path, settings: dict, images: np.ndarray, out: Path) -> Path:
    """The bundle's fp32 ONNX quantized as onnx-int8 is, with no op left float."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from export.formats_onnx import quantize_qdq

    source = bundle / "model_fp32.onnx"
    if not source.is_file():
        raise SystemExit(f"{source} not found: the ONNX twin is quantized from the bundle's fp32 ONNX. "
                         "Fix: export with --formats onnx-fp32,onnx-int8")
    quant_pre_process(str(source), str(out / "preprocessed.onnx"))
    path = out / "model_int8_integer_only.onnx"
    quantize_qdq(out / "preprocessed.onnx", path, images, settings, [])
    return path


def main(argv: list[str] | None = None) -> int:
    """Convert the integer-only twin, time both, print the table and the ratio, write results JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.int8_float_ops",
                                description=__doc__.splitlines()[0])
    p.add_argument("--bundle", required=True, type=Path)
    p.add_argument("--format", default="tflite-int8", choices=sorted(ARTIFACTS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    quiet_tensorflow()
    file, backend = ARTIFACTS[args.format]
    twin = fully_integer(args.bundle, Path(args.out) / ".models" / f"int8_float_ops-{args.bundle.name}",
                         args.format)
    files = {"with_float_ops": args.bundle / file, "integer_only": twin}
    timings = measure(files, args.threads, args.rounds, args.iters, backend)
    med = {k: v["median_of_rounds_ms"] for k, v in timings.items()}
    print(f"{args.bundle}: {args.format} vs the same run fully integer, {args.threads} threads, {backend}")
    print(f"{'variant':<26}{'p50 ms':>9}{'p90 ms':>9}{'median-of-rounds ms':>22}")
    for name, t in timings.items():
        print(f"{name:<26}{t['p50']:>9.3f}{t['p90']:>9.3f}{t['median_of_rounds_ms']:>22.3f}")
    ratio = med["with_float_ops/invoke"] / med["integer_only/invoke"] if backend == "litert" else None
    ratio_run_one = med["with_float_ops/run_one"] / med["integer_only/run_one"]
    invoke = f"x{ratio:.3f} (invoke), " if ratio is not None else ""
    print(f"with float ops / integer only: {invoke}x{ratio_run_one:.3f} (run_one)")
    path = write_result("int8_float_ops", {"bundle": str(args.bundle), "format": args.format,
                                           "threads": args.threads, "timings": timings, "ratio_invoke": ratio,
                                           "ratio_run_one": ratio_run_one}, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
