"""``--mode sustained --minutes N``: one case run without pause, latency per window beside thermal state.

A board that is fast for ten seconds and throttles after three minutes is slow on the line. Per
window (10 s by default): query count and latency percentiles, and one reading of temperature,
clock and throttling from :mod:`benchmarks.thermal`. A run in which any reading showed throttling
or under-voltage is marked ``throttled`` / ``under_voltage``: its figures describe a board that was
not running at full speed (fix the cooling or the supply before trusting them).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from benchmarks.cases import open_case, plan
from benchmarks.engines import CAMERA
from benchmarks.fingerprint import bundle_fingerprint, machine_fingerprint
from benchmarks.inputs import camera_frames, contract_inputs
from benchmarks.latency import latency_summary
from benchmarks.results import new_result
from benchmarks.thermal import probe, sample
from runtime.bundle import Bundle
from runtime.errors import BundleError


def run_sustained(
    bundle: Bundle,
    kind: str | None,
    artifact: str | None,
    threads: int | None,
    minutes: float,
    window_s: float,
    protocol: dict,
    progress: Callable[[str], None],
) -> dict:
    """Run one case for ``minutes``; the result document with one entry per window."""
    name = artifact or bundle.select().name
    kind = kind or ("litert" if bundle.get(name).format == "tflite" else "onnxruntime")
    rows = [r for r in plan(bundle, (kind,), [threads], [name]) if r["status"] == "planned"]
    if not rows:
        raise BundleError(f"backend {kind!r} cannot run {name} here; pick another with --backends")
    row = rows[0]
    inputs, _ = contract_inputs(bundle)
    engine = open_case(row, bundle, inputs, camera_frames(bundle, 8, CAMERA))
    source, reader = probe()
    windows, all_samples = [], []
    start = time.monotonic()
    end = start + minutes * 60
    try:
        while time.monotonic() < end:
            samples = _window(engine.step, min(window_s, max(end - time.monotonic(), 0.01)))
            all_samples += samples
            reading = sample(reader)
            lat = latency_summary(np.asarray(samples) * 1e3)
            windows.append(
                {
                    "t": round(time.monotonic() - start, 3),
                    "queries": len(samples),
                    **{k: lat[k] for k in ("p50", "p90", "p99", "mean")},
                    "state": reading,
                }
            )
            progress(f"window {len(windows)}: p50 {lat['p50']:.3f} ms, {reading.get('temp_c')} C")
    finally:
        engine.close()
    doc = new_result("sustained", machine_fingerprint(), bundle_fingerprint(bundle), protocol)
    row.update(status="ok", latency_ms=latency_summary(np.asarray(all_samples) * 1e3))
    doc["cases"] = [row]
    doc["sustained"] = {
        "case": row["id"],
        "minutes": minutes,
        "window_s": window_s,
        "state_source": source,
        "windows": windows,
        "throttled": any(w["state"].get("throttled") for w in windows),
        "under_voltage": any(w["state"].get("under_voltage") for w in windows),
        "drift_p50": windows[-1]["p50"] / windows[0]["p50"] if windows else None,
    }
    return doc


def _window(step: Callable[[], None], seconds: float) -> list[float]:
    samples, stop = [], time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        samples.append(t1 - t0)
        if t1 >= stop:
            return samples
