"""One case, cold, in a fresh process: ``python -m benchmarks.probe --bundle B --kind K --artifact A``.

Prints one JSON line: engine import seconds, load seconds, first inference ms, resident memory
before loading and at its peak. A process of its own is the only way to get these honestly: the
interleaved timing in ``benchmarks.protocol`` shares one process between every case.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys
import time

from benchmarks.cases import open_case
from benchmarks.engines import CAMERA
from benchmarks.inputs import camera_frames, contract_inputs
from runtime.bundle import Bundle

_ENGINE_MODULES = {
    "litert": "ai_edge_litert.interpreter",
    "litert-invoke": "ai_edge_litert.interpreter",
    "runtime-frame": "ai_edge_litert.interpreter",
    "onnxruntime": "onnxruntime",
    "ort-cuda": "onnxruntime",
    "ort-tensorrt": "onnxruntime",
    "keras": "keras",
    "torch-cuda": "onnx2torch",
    "torch-cuda-fp16": "onnx2torch",
}


def rss_mb() -> float:
    """Current resident set size (MiB), from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", required=True)
    p.add_argument("--kind", required=True)
    p.add_argument("--artifact", default="")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    bundle = Bundle.load(args.bundle)
    inputs, _ = contract_inputs(bundle, 2)
    frames = camera_frames(bundle, 2, CAMERA) if args.kind == "runtime-frame" else []
    before = rss_mb()
    t0 = time.perf_counter()
    if args.kind in _ENGINE_MODULES:
        importlib.import_module(_ENGINE_MODULES[args.kind])
    t1 = time.perf_counter()
    row = {"artifact": args.artifact or None, "backend": args.kind, "threads": args.threads}
    engine = open_case(row, bundle, inputs, frames)
    t2 = time.perf_counter()
    engine.step()
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        json.dumps(
            {
                "import_s": t1 - t0,
                "load_s": t2 - t1,
                "first_ms": (t3 - t2) * 1e3,
                "rss_before_mb": before,
                "peak_rss_mb": peak,
            }
        )
    )
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
