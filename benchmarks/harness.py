"""Shared timing and result-writing helpers for every benchmark.

Machines here are shared and noisy, so benchmarks compare *ratios measured in one run*:
interleave the variants, repeat in rounds, report medians. Absolute numbers go in the results
JSON with the machine fingerprint so that a reader knows what they mean.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from runtime.detect import cpu_info
from runtime.versions import package_versions

_PACKAGES = ("numpy", "opencv-python-headless", "ai-edge-litert", "onnxruntime", "onnxruntime-gpu",
             "tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "onnx")


def summarize_ms(samples_s: list[float] | np.ndarray) -> dict:
    """Latency summary in milliseconds from per-call durations in seconds."""
    a = np.asarray(samples_s, dtype=np.float64) * 1e3
    if a.size == 0:
        return {"n": 0}
    return {
        "n": int(a.size),
        "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
        "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max()),
    }


def time_calls(fn: Callable[[], object], *, warmup: int = 5, iters: int = 100,
               min_seconds: float = 0.0) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then at least ``iters`` times (and ``min_seconds``)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return summarize_ms(samples)


def interleaved(variants: dict[str, Callable[[], object]], *, rounds: int = 7, iters: int = 50,
                warmup: int = 5) -> dict[str, dict]:
    """Time several variants in alternating rounds; per variant, the median of round medians.

    Alternating rounds spread background load evenly over the variants, which is what makes
    their *ratio* trustworthy on a shared machine.
    """
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    per_round: dict[str, list[float]] = {k: [] for k in variants}
    all_samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            samples = []
            for _ in range(iters):
                t0 = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t0)
            per_round[name].append(statistics.median(samples))
            all_samples[name].extend(samples)
    return {name: {**summarize_ms(all_samples[name]),
                   "median_of_rounds_ms": statistics.median(per_round[name]) * 1e3,
                   "rounds": rounds}
            for name in variants}


def isa_flags() -> list[str]:
    """The CPU's instruction-set features that decide int8 vs fp32 speed (VNNI on x86, sdot on Arm)."""
    return cpu_info()[1]


def machine_info() -> dict:
    """A fingerprint of where a benchmark ran: CPU, cores, OS, Python and package versions."""
    return {
        "host": socket.gethostname(), "cpu": cpu_info()[0] or platform.processor() or platform.machine(),
        "isa": isa_flags(), "cores": os.cpu_count(),
        "machine": platform.machine(), "system": platform.platform(),
        "python": platform.python_version(), "packages": package_versions(_PACKAGES),
    }


def write_result(name: str, payload: dict, out_dir: str | Path = "results") -> Path:
    """Write ``results/<name>-<host>-<UTC timestamp>.json`` with the machine fingerprint."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"{name}-{socket.gethostname()}-{stamp}.json"
    doc = {"benchmark": name, "created": datetime.now(UTC).isoformat(), "machine": machine_info(),
           **payload}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
