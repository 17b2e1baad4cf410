"""``python -m benchmarks run --mode latency``: every planned case through :mod:`benchmarks.protocol`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks.cases import open_case, plan
from benchmarks.engines import CAMERA
from benchmarks.fingerprint import bundle_fingerprint, machine_fingerprint
from benchmarks.inputs import camera_frames, contract_inputs
from benchmarks.protocol import Protocol, Timed, cold_probe, figures, first_and_warmup, interleave, top1_check
from benchmarks.results import new_result
from runtime.bundle import Bundle


def fp32_reference(bundle: Bundle, inputs: list[np.ndarray]) -> tuple[np.ndarray | None, str | None]:
    """Probabilities of the first fp32 artifact that runs here, on ``inputs`` (the check's reference)."""
    for artifact in bundle.artifacts:
        if artifact.precision != "fp32":
            continue
        try:
            with bundle.open(artifact) as engine:
                return np.stack([engine.run_one(x) for x in inputs]), artifact.name
        except Exception:  # noqa: BLE001 - an engine missing here: try the next fp32 artifact
            continue
    return None, None


def _open(
    row: dict, bundle: Bundle, inputs, frames, p: Protocol, reference, source, cuda_graphs
) -> Timed | None:
    """Cold probe, open, warm up and check one case; a case that cannot open is marked failed."""
    import time

    if p.cold_probe:
        row["cold"] = cold_probe(row, str(bundle.root))
    try:
        t0 = time.perf_counter()
        engine = open_case(row, bundle, inputs, frames, cuda_graphs)
        row["load_s_in_process"] = time.perf_counter() - t0
        row["warmup"] = first_and_warmup(engine, p)
        row["check"] = top1_check(engine, inputs, reference, source)
        row["engine"] = engine.describe()
    except Exception as exc:  # noqa: BLE001 - one broken case must not end the run; it is reported
        row.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
        return None
    return Timed(row, engine, [], [])


def run_latency(
    bundle: Bundle,
    kinds: tuple[str, ...],
    threads: list[int | None],
    artifacts: list[str] | None,
    p: Protocol,
    progress: Callable[[str], None],
    cuda_graphs: bool = False,
) -> dict:
    """Plan, measure and return the result document (not yet written)."""
    rows = plan(bundle, kinds, threads, artifacts)
    doc = new_result("latency", machine_fingerprint(), bundle_fingerprint(bundle), p.to_dict())
    inputs, source = contract_inputs(bundle)
    frames = camera_frames(bundle, 8, CAMERA)
    reference, ref_name = fp32_reference(bundle, inputs)
    doc["check_reference"] = {"artifact": ref_name, "inputs": source, "n": len(inputs)}
    for row in rows:
        if row["status"] == "skipped":
            progress(f"skip {row['id']}: {row['reason']}")
    timed = []
    for row in (r for r in rows if r["status"] == "planned"):
        progress(f"open {row['id']}")
        t = _open(row, bundle, inputs, frames, p, reference, source, cuda_graphs)
        if t is not None:
            timed.append(t)
    try:
        doc["rounds"] = interleave(timed, p, progress)
    finally:
        for t in timed:
            t.engine.close()
    for t in timed:
        t.case.update(status="ok", **figures(t))
    doc["cases"] = rows
    return doc
