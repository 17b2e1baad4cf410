"""What the camera loop costs on top of the bare interpreter: ``python -m benchmarks.runtime_overhead``.

Per artifact, interleaved rounds (``benchmarks.harness.interleaved``) of:

* ``invoke``   - the bare ``interpreter.invoke()`` with the input tensor already set: the floor;
* ``infer``    - ``backend.run_one`` on a model-sized RGB image (set input, invoke, dequantize);
* ``prepare``  - ``prepare_bgr`` of the camera frame alone (crop/resize/BGR->RGB per the contract);
* ``frame``    - the loop's whole per-frame work, ``FrameLoop.process``: prepare + inference +
  thresholds + k-of-n + stats, on the same frames.

Reported: ``frame / invoke`` (the issue's bound: <= 1.15) and ``frame / (prepare + invoke)``
(what the loop adds beyond the two unavoidable steps). Artifacts: the demo bundle's int8 and fp32
TFLite (``--bundle``, default ``bundles/latest``; if absent, a MobileNetV2 0.35 at ``--demo-size``
is built) and a MobileNetV2 1.0 at 224 px built here, each with 640x480 camera frames, 320x240
frames (a camera asked for less) and frames already at the model's size (no resize: what
``--camera-resize`` gets from a Pi ISP or Jetson VIC, marked ``*`` in the table). Built
models use random weights (latency does not depend on weight values); int8 calibration uses
synthetic part images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import interleaved, machine_info, write_result
from runtime.bundle import Bundle
from runtime.contract import InputContract
from runtime.debounce import KofN
from runtime.frame_loop import FrameLoop
from runtime.fsutil import sha256_file
from runtime.preprocess import prepare_bgr
from runtime.sources.base import Frame
from runtime.stats import RunStats
from runtime.tf_logs import quiet_tensorflow

CACHE = Path("results/.models")
CAMERA = (480, 640)  # frame height, width
SMALL_CAMERA = (240, 320)  # a camera asked for less (--width 320 --height 240): cheaper resize


def build_bench_bundle(size: int, alpha: float, out: Path = CACHE) -> Path:
    """A bundle (int8 + fp32 TFLite) of an untrained MobileNetV2 at ``size`` px; cached."""
    root = out / f"mnv2-{alpha:g}-{size}"
    if (root / "bundle.json").is_file():
        return root
    quiet_tensorflow()
    from benchmarks.models import mobilenet_v2_classifier
    from export.formats_tflite import convert_tflite  # export's own conversion, not a copy of it

    root.mkdir(parents=True, exist_ok=True)
    model = mobilenet_v2_classifier(size, alpha)
    model.export(str(root / "saved_model"), verbose=False)
    # The SavedModel takes RGB 0..255, as export's calibration files hold them.
    rgb = [f[..., ::-1] for f in synthetic_frames(16, (size, size), seed=1)]
    np.save(root / "calibration.npy", np.stack(rgb))
    files = {"fp32": "model_fp32.tflite", "int8": "model_int8.tflite"}
    for precision, name in files.items():
        convert_tflite(str(root / "saved_model"), str(root / name), precision,
                       str(root / "calibration.npy") if precision == "int8" else None)
    _write_bundle(root, InputContract(size, size), files)
    return root


def _write_bundle(root: Path, contract: InputContract, files: dict[str, str]) -> None:
    arts = [{"name": f"tflite-{p}", "file": f, "format": "tflite", "precision": p,
             "sha256": sha256_file(root / f), "size_bytes": (root / f).stat().st_size, "backends": ["litert"],
             "gate": {"status": "passed", "note": "benchmark model, random weights, not gated"},
             "thresholds": {"defect": 0.5}} for p, f in files.items()]
    meta = {"schema_version": 1, "name": root.name, "labels": ["defect", "ok"], "ok_label": "ok",
            "input": contract.to_dict(), "artifacts": arts}
    (root / "bundle.json").write_text(json.dumps(meta, indent=2))


def synthetic_frames(n: int, shape: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """BGR frames of synthetic parts (``train.synth`` when importable, else textured noise)."""
    import cv2

    rng = np.random.default_rng(seed)
    try:
        from train.synth import render_part

        side = min(shape)
        parts = [render_part(rng, None if i % 2 else "scratch", side) for i in range(n)]
        return [cv2.copyMakeBorder(cv2.cvtColor(p, cv2.COLOR_RGB2BGR), 0, shape[0] - side, 0, shape[1] - side,
                                   cv2.BORDER_REFLECT) for p in parts]
    except ImportError:
        return [cv2.GaussianBlur(rng.integers(0, 255, (*shape, 3), dtype=np.uint8), (5, 5), 0)
                for _ in range(n)]


def measure(bundle: Bundle, name: str, frame_shape: tuple[int, int] | None, threads: int | None,
            rounds: int, iters: int) -> dict:
    """Interleaved timings of invoke / infer / prepare / frame for one artifact and frame size."""
    artifact = bundle.get(name)
    contract = bundle.contract
    shape = frame_shape or (contract.height, contract.width)
    frames = [Frame(f, i, 0.0) for i, f in enumerate(synthetic_frames(8, shape))]
    with bundle.open(artifact, backend="litert", threads=threads) as engine:
        loop = FrameLoop(engine, contract, bundle.decider(artifact), KofN(3, 5), lambda e, f: None,
                         RunStats())
        model_input = prepare_bgr(frames[0].image, contract)
        engine.run_one(model_input)  # leaves a real input set for the bare invoke
        state = {"i": 0}

        def next_frame():
            state["i"] = (state["i"] + 1) % len(frames)
            return frames[state["i"]]

        variants = {"invoke": engine.invoke_only, "infer": lambda: engine.run_one(model_input),
                    "prepare": lambda: prepare_bgr(next_frame().image, contract),
                    "frame": lambda: loop.process(next_frame())}
        timings = interleaved(variants, rounds=rounds, iters=iters)
        engine.run_one(model_input)
    med = {k: v["median_of_rounds_ms"] for k, v in timings.items()}
    low = {k: v["min"] for k, v in timings.items()}  # least disturbed call: robust on a busy machine
    label = f"{shape[1]}x{shape[0]}" + ("" if frame_shape else "*")
    return {"artifact": name, "model_px": contract.height, "frame": label,
            "threads": engine.threads, "median_ms": med, "min_ms": low,
            "frame_over_invoke": med["frame"] / med["invoke"],
            "frame_over_invoke_min": low["frame"] / low["invoke"],
            "frame_over_prepare_plus_invoke": med["frame"] / (med["prepare"] + med["invoke"]),
            "timings": timings}


def demo_bundle(path: str, demo_size: int) -> tuple[Bundle, str]:
    """The demo bundle if it exists (and has TFLite int8/fp32), else a built stand-in."""
    try:
        bundle = Bundle.load(path)
        if {"tflite-int8", "tflite-fp32"} <= {a.name for a in bundle.artifacts}:
            return bundle, f"demo bundle {path}"
    except Exception as exc:  # noqa: BLE001 - any unusable bundle: fall back, and say so
        print(f"note: {path} not usable ({exc}); building a stand-in", file=sys.stderr)
    return Bundle.load(build_bench_bundle(demo_size, 0.35)), f"MobileNetV2 0.35 at {demo_size} px (built)"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table and write results/runtime_overhead-*.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.runtime_overhead",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", default="bundles/latest")
    p.add_argument("--demo-size", type=int, default=96, help="stand-in model size when there is no bundle")
    p.add_argument("--threads", type=int, default=None, help="interpreter threads (default: core count)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    demo, demo_what = demo_bundle(args.bundle, args.demo_size)
    big = Bundle.load(build_bench_bundle(224, 1.0))
    models = [(demo, demo_what), (big, "MobileNetV2 1.0 at 224 px (built)")]
    rows = []
    for bundle, _what in models:
        for name in ("tflite-int8", "tflite-fp32"):
            for frame_shape in (CAMERA, SMALL_CAMERA, None):
                rows.append(measure(bundle, name, frame_shape, args.threads, args.rounds, args.iters))
    print_table(rows, [w for _, w in models])
    path = write_result("runtime_overhead", {"models": [w for _, w in models], "bound": 1.15, "rows": rows},
                        args.out)
    print(f"wrote {path}")
    return 0


def print_table(rows: list[dict], models: list[str]) -> None:
    print("models: " + "; ".join(models))
    print(f"{'artifact':12s} {'model':>5s} {'frame':>8s} {'invoke':>8s} {'infer':>8s} {'prepare':>8s} "
          f"{'frame':>8s}  {'frame/invoke':>12s} {'(min-based)':>11s} {'frame/(prep+inv)':>16s}")
    for r in rows:
        m = r["median_ms"]
        print(f"{r['artifact']:12s} {r['model_px']:5d} {r['frame']:>8s} {m['invoke']:8.3f} {m['infer']:8.3f} "
              f"{m['prepare']:8.3f} {m['frame']:8.3f}  {r['frame_over_invoke']:12.2f} "
              f"{r['frame_over_invoke_min']:11.2f} {r['frame_over_prepare_plus_invoke']:16.2f}")
    print("(ms, median of interleaved rounds; min-based: fastest call of each; bound: frame/invoke <= 1.15;\n"
          " *: frames at the model's size, as --camera-resize delivers them)")


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - t0:.0f} s, {machine_info()['cpu']})")
    sys.exit(code)
