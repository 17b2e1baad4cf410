"""``export(config)``: run dir -> gated, self-describing bundle. The one function the CLI calls."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from export.bundle_writer import check_output, publish, staging_dir
from export.config import ExportConfig
from export.context import ExportContext
from export.errors import GateRejectedError
from export.evaluate import (
    EvalData,
    Predictions,
    artifact_predictions,
    gate_entry,
    load_eval_data,
    reference_entry,
    split_warnings,
)
from export.gate import diagnoses
from export.options import resolve_settings, select_formats
from export.registry import ExportResult, run_format
from export.report import guard_line, quantization_notes, write_report
from export.run_dir import RunInfo, load_run
from runtime.artifact_kinds import QUANTIZED_PRECISIONS
from runtime.bundle import SCHEMA_VERSION
from runtime.fitness import describe, judge, not_applicable
from runtime.fsutil import atomic_write_json, atomic_write_text, sha256_file, update_symlink
from runtime.versions import package_versions

log = logging.getLogger("export")

_TOOLS = ("tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime", "onnxconverter-common",
          "ai-edge-litert", "numpy", "opencv-python-headless")


def output_path(config: ExportConfig, run: RunInfo) -> Path:
    """``config.out`` or ``bundles/<run name>``; a ``latest`` link means the bundle it points to."""
    out = Path(config.out) if config.out else Path("bundles") / run.name
    return out.resolve() if out.is_symlink() else out.absolute()


def export(config: ExportConfig) -> Path:
    """Convert a run into every requested format, gate each artifact, write the bundle atomically.

    Returns the bundle folder. Raises :class:`export.errors.GateRejectedError` *after* writing the
    bundle when an artifact was rejected or failed to export (unless ``config.keep_going`` and at
    least one artifact passed), and other :class:`export.errors.ExportError` s before writing anything.
    """
    run = load_run(config.run)
    specs = select_formats(config)
    out = output_path(config, run)
    check_output(out)
    data = load_eval_data(run)  # fail on unreadable gate images before spending minutes converting
    warnings = split_warnings(data, run, config.target_false_alarm_rate)
    for w in warnings:  # said now, before minutes of conversion, and again in the bundle and report
        log.warning("warning: %s", w)
    with tempfile.TemporaryDirectory(prefix="edgeflag-export-") as work, staging_dir(out) as staging:
        with ExportContext(run, config, Path(work), data) as ctx:
            results = [run_format(s, ctx, staging / s.filename, resolve_settings(s, config)) for s in specs]
            doc = bundle_document(ctx, results, data, out.name)
            doc["warnings"] = warnings
        atomic_write_text(staging / "labels.txt", "\n".join(run.labels) + "\n")
        atomic_write_json(staging / "export_config.json", config.to_dict())
        write_report(doc, staging)
        atomic_write_json(staging / "bundle.json", doc)  # last: its presence marks a complete bundle
        publish(staging, out)
    if out.name != "latest":
        update_symlink(out.parent / "latest", out)
    _finish(doc, out, config)
    return out


def bundle_document(ctx: ExportContext, results: list[ExportResult], data: EvalData, name: str) -> dict:
    """Evaluate every exported artifact against the reference and assemble bundle.json."""
    run, config = ctx.run, ctx.config
    ref = ctx.reference()
    reference = reference_entry(ref, data, run, config)
    artifacts = [artifact_entry(r, ctx, data, ref, reference) for r in results if r.ok]
    return {"schema_version": SCHEMA_VERSION, "name": name, "created": datetime.now(UTC).isoformat(),
            "labels": run.labels, "ok_label": run.ok_label, "input": run.contract.to_dict(),
            "artifacts": artifacts,
            "failed_exports": [{"name": r.spec.name, "error": r.error, "export_seconds": round(r.seconds, 2)}
                               for r in results if not r.ok],
            "reference": reference, "fitness": fitness(reference, config, sorting=run.ok_label is None),
            "gate_policy": gate_policy(config), "provenance": provenance(run)}


def fitness(reference: dict, config: ExportConfig, sorting: bool = False) -> dict:
    """The reference model judged against the line targets at the bundle's thresholds (test split).

    A sorting bundle (no good class) has no defect recall or false alarms to judge.
    """
    targets = config.line_targets()
    if sorting:
        return not_applicable(targets)
    return judge(reference["defect_recall_at_threshold_ci"], reference["false_alarm_rate_at_threshold_ci"],
                 targets, "test split, at the bundle's thresholds")


def artifact_entry(result: ExportResult, ctx: ExportContext, data: EvalData, ref: Predictions,
                   reference: dict) -> dict:
    """One artifact's bundle.json entry, gate included."""
    spec, path = result.spec, result.path
    preds = artifact_predictions(path, spec.backends[0], data, ctx.config.threads)
    entry = gate_entry(preds, ref, reference, data, ctx.run, spec.precision, ctx.config)
    return {"name": spec.name, "file": path.name, "format": spec.fmt, "precision": spec.precision,
            "sha256": sha256_file(path), "size_bytes": path.stat().st_size, "backends": spec.backends,
            "export_seconds": round(result.seconds, 2), "settings": result.settings, **result.details,
            "metadata": "embedded (labels, ok_label, input contract)", **entry}


def gate_policy(config: ExportConfig) -> dict:
    """The limits applied, with their units, for bundle.json."""
    return {**asdict(config.gate), "target_false_alarm_rate": config.target_false_alarm_rate,
            "quantized_precisions": list(QUANTIZED_PRECISIONS),
            "evaluated_on": "test split, runtime backends",
            "reference": "Keras model.keras on the same uint8 pixels",
            "units": {"top1": "fraction", "per_class_recall": "fraction", "agreement": "fraction",
                      "top1_drop": "percentage points", "recall_drop": "percentage points",
                      "min_agreement_*": "percent", "max_*_drop": "percentage points"}}


def provenance(run: RunInfo) -> dict:
    """Where the bundle came from: run, data, weights, and tool versions on both sides."""
    m = run.manifest
    versions = package_versions(_TOOLS)
    return {"run": run.name, "run_dir": str(run.root), "run_created": m.get("created"),
            "data_dir": str(run.data_dir), "config_hash": m.get("config_hash"),
            "dataset_fingerprint": m.get("dataset_fingerprint"), "weights": m.get("weights"),
            "backbone": m.get("backbone"), "alpha": m.get("alpha"), "train_versions": m.get("versions"),
            "export_versions": versions}


def _finish(doc: dict, out: Path, config: ExportConfig) -> None:
    """Log the outcome; raise when something was rejected (unless keep_going and one passed)."""
    rejected = [a for a in doc["artifacts"] if a["gate"]["status"] != "passed"]
    problems = [f"{a['name']} rejected: " + "; ".join(a["gate"]["reasons"]) for a in rejected]
    problems += [d for a in rejected for d in diagnoses(a["name"], a["gate"]["metrics"])]
    problems += [f"{f['name']} failed to export: {f['error']}" for f in doc["failed_exports"]]
    passed = [a["name"] for a in doc["artifacts"] if a["gate"]["status"] == "passed"]
    log.info("bundle %s: %d passed (%s), %d problem(s); report: %s", out, len(passed),
             ", ".join(passed) or "none", len(problems), out / "report.md")
    for p in problems:
        log.warning("%s", p)
    for note in quantization_notes(doc):
        log.info("%s", note)
    if lowered := guard_line(doc["reference"]["threshold_selection"]["overall"].get("recall_guard")):
        log.info("reference thresholds:%s", lowered)
    if doc["fitness"]["fit"] is False:
        log.warning("reference model: %s (the camera program refuses this bundle without --allow-unfit; "
                    "more photos of the missed classes, or a looser --target-false-alarm-rate, are the "
                    "usual fixes)", describe(doc["fitness"]))
    else:
        log.info("reference model: %s", describe(doc["fitness"]))
    if problems and not (config.keep_going and passed):
        raise GateRejectedError(str(out), problems)
