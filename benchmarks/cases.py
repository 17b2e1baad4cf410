"""Which cases a run measures: bundle artifacts x backend kinds x thread counts, and why some are skipped."""

from __future__ import annotations

from pathlib import Path

from benchmarks.engines import ALL_KINDS, BASELINE_KINDS, CPU_KINDS, GPU_KINDS, unavailable
from runtime.bundle import Artifact, Bundle
from runtime.errors import BundleError

KERAS = "reference-keras"  # the artifact name of the Keras model.predict baseline


def default_kinds(baselines: bool = True) -> tuple[str, ...]:
    """Every backend that can run a bundle artifact, the GPU ones included, plus the baselines."""
    return CPU_KINDS + GPU_KINDS + (BASELINE_KINDS if baselines else ())


def keras_model(bundle: Bundle) -> Path | None:
    """The run's ``model.keras`` named by the bundle's provenance, when this machine has it."""
    run_dir = bundle.meta.get("provenance", {}).get("run_dir")
    path = Path(run_dir) / "model.keras" if run_dir else None
    return path if path is not None and path.is_file() else None


def _row(artifact: Artifact | None, kind: str, threads: int | None) -> dict:
    name = artifact.name if artifact else KERAS
    row = {"id": f"{name}/{kind}/t{threads or 'auto'}", "artifact": name, "backend": kind, "threads": threads}
    if artifact is not None:
        metrics = artifact.raw.get("gate", {}).get("metrics", {})
        row.update(
            precision=artifact.precision,
            format=artifact.format,
            size_bytes=artifact.size_bytes,
            gate_status=artifact.gate_status,
            gate_top1=metrics.get("top1"),
        )
    return row


def plan(
    bundle: Bundle, kinds: tuple[str, ...], threads: list[int | None], artifacts: list[str] | None = None
) -> list[dict]:
    """Case rows, each ``status: planned`` or ``skipped`` with the reason (nothing fails here)."""
    unknown = [k for k in kinds if k not in ALL_KINDS]
    if unknown:
        raise BundleError(f"unknown --backends {unknown}; choose from {', '.join(ALL_KINDS)}")
    chosen = [bundle.get(n) for n in artifacts] if artifacts else [a for a in bundle.artifacts if a.passed]
    if not chosen:
        raise BundleError(
            f"{bundle.root}: no gate-passed artifact to benchmark; name rejected ones with "
            "--artifacts to time them anyway"
        )
    rows = []
    for kind in kinds:
        if kind in ("keras", "noop"):
            rows.append(_one_off(bundle, kind))
            continue
        for artifact in chosen:
            reason = unavailable(kind, artifact)
            if reason and reason.startswith(f"{kind} runs "):
                continue  # a format mismatch is not a case at all
            for t in threads[:1] if kind in GPU_KINDS else threads:
                rows.append(
                    {
                        **_row(artifact, kind, t),
                        "status": "skipped" if reason else "planned",
                        **({"reason": reason} if reason else {}),
                    }
                )
    return rows


def _one_off(bundle: Bundle, kind: str) -> dict:
    row = {**_row(None, kind, None), "artifact": KERAS if kind == "keras" else "none"}
    row["id"] = f"{row['artifact']}/{kind}"
    reason = unavailable(kind, None)
    if kind == "keras" and reason is None and keras_model(bundle) is None:
        reason = "the bundle's run directory (model.keras) is not on this machine"
    return {**row, "status": "skipped" if reason else "planned", **({"reason": reason} if reason else {})}


def open_case(row: dict, bundle: Bundle, inputs: list, frames: list, cuda_graphs: bool = False):
    """A fresh engine instance for a planned case row."""
    from benchmarks.engines import KerasEngine, NoopEngine, open_engine

    if row["backend"] == "keras":
        return KerasEngine(keras_model(bundle), inputs)
    if row["backend"] == "noop":
        return NoopEngine()
    return open_engine(
        row["backend"], bundle, bundle.get(row["artifact"]), row["threads"], inputs, frames, cuda_graphs
    )
