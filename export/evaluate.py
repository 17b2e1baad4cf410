"""Run the reference and every artifact on the run's held-out images, through runtime code."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export.config import ExportConfig
from export.dataset import load_pixels
from export.gate import classification_summary, gate_metrics, line_changes, verdict
from export.run_dir import RunInfo
from runtime.decision import Decider, choose_thresholds, small_split_warning, sorting_summary
from runtime.fitness import LineTargets
from runtime.rates import rate_of

log = logging.getLogger("export")


@dataclass(frozen=True)
class EvalData:
    """Test pixels (the gate) and validation pixels (threshold choice), uint8 as on the device."""

    x_test: np.ndarray
    y_test: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_eval_data(run: RunInfo) -> EvalData:
    """Decode the test and val splits with the device's decode + preprocessing."""
    x_test, y_test = load_pixels(run, run.nonempty_split("test"))
    x_val, y_val = load_pixels(run, run.nonempty_split("val"))
    log.info("gate data: %d test, %d val images", len(y_test), len(y_val))
    return EvalData(x_test, y_test, x_val, y_val)


@dataclass(frozen=True)
class Predictions:
    """Probabilities of one model on the test and val images."""

    test: np.ndarray
    val: np.ndarray


def keras_predictions(model, data: EvalData) -> Predictions:
    """The reference: the Keras model on the same uint8 pixels, as float32."""
    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(x.astype(np.float32), batch_size=32, verbose=0), dtype=np.float32)

    return Predictions(predict(data.x_test), predict(data.x_val))


def artifact_predictions(path: Path, backend: str, data: EvalData, threads: int | None) -> Predictions:
    """An artifact's probabilities through ``runtime.backends`` (the code the device runs)."""
    from runtime.backends import open_backend

    with open_backend(path, backend=backend, threads=threads) as engine:
        return Predictions(engine.run(data.x_test), engine.run(data.x_val))


def decision_summary(preds: Predictions, data: EvalData, run: RunInfo, target_far: float,
                     targets: LineTargets | None = None) -> dict:
    """Thresholds chosen on val for ``target_far`` and the line ``targets``; what they achieve on test."""
    thresholds, details = choose_thresholds(preds.val, data.y_val, run.labels, run.ok_label, target_far,
                                            targets)
    decider = Decider(run.labels, run.ok_label, thresholds)
    flagged = decider.flags(preds.test)
    sorting = {}
    if run.ok_label is None:  # sorting: no defects or good parts; how often a class is decided, and right
        sorting = sorting_summary(preds.test, data.y_test, decider, "test")
        recall = false_alarms = rate_of(np.zeros(0, bool))
    else:
        ok = run.labels.index(run.ok_label)
        recall, false_alarms = rate_of(flagged[data.y_test != ok]), rate_of(flagged[data.y_test == ok])
    # One count per rate: the point value is read off it, so the two can never disagree.
    return {"thresholds": thresholds, "threshold_selection": {"split": "val", **details}, **sorting,
            "defect_recall_at_threshold": recall["value"], "defect_recall_at_threshold_ci": recall,
            "false_alarm_rate_at_threshold": false_alarms["value"],
            "false_alarm_rate_at_threshold_ci": false_alarms}


def split_warnings(data: EvalData, run: RunInfo, target_far: float) -> list[str]:
    """Warnings for val/test splits too small for the false-alarm target (see ``small_split_warning``)."""
    if run.ok_label is None:
        return []
    ok = run.labels.index(run.ok_label)
    found = [small_split_warning(int((y == ok).sum()), target_far, run.ok_label, split)
             for split, y in (("validation", data.y_val), ("test", data.y_test))]
    return [w for w in found if w]


def reference_entry(ref: Predictions, data: EvalData, run: RunInfo, config: ExportConfig) -> dict:
    """The ``reference`` section of bundle.json."""
    summary = classification_summary(ref.test, data.y_test, run.labels)
    return {"model": run.manifest["files"]["keras_model"], "engine": "keras", "split": "test",
            "n_test": int(len(data.y_test)), "n_val": int(len(data.y_val)), **summary,
            **decision_summary(ref, data, run, config.target_false_alarm_rate, config.line_targets())}


_AT_THRESHOLD = ("defect_recall_at_threshold", "defect_recall_at_threshold_ci",
                 "false_alarm_rate_at_threshold", "false_alarm_rate_at_threshold_ci")


def gate_entry(preds: Predictions, ref: Predictions, reference: dict, data: EvalData, run: RunInfo,
               precision: str, config: ExportConfig) -> dict:
    """One artifact's ``gate`` + threshold fields for bundle.json."""
    policy = config.gate
    metrics = gate_metrics(preds.test, ref.test, data.y_test, run.labels, policy.tie_tolerance)
    decision = decision_summary(preds, data, run, config.target_false_alarm_rate, config.line_targets())
    for key in _AT_THRESHOLD + ("test_decided", "test_right_when_decided"):  # the last two: sorting only
        if key in decision:
            metrics[key] = decision.pop(key)
    if run.ok_label is not None:  # a line: does it flag the parts the reference flags?
        mine = Decider(run.labels, run.ok_label, decision["thresholds"]).flags(preds.test)
        theirs = Decider(run.labels, run.ok_label, reference["thresholds"]).flags(ref.test)
        metrics["line_changes"] = line_changes(mine, theirs, data.y_test, run.labels.index(run.ok_label))
    status, reasons = verdict(metrics, reference, precision, policy)
    return {"gate": {"status": status, "reasons": reasons, "metrics": metrics}, **decision}
