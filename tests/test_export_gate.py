"""The accuracy gate: its arithmetic, and a deliberately damaged int8 artifact being rejected."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from export.__main__ import main
from export.config import ExportConfig, GatePolicy
from export.evaluate import EvalData, Predictions, decision_summary, gate_entry, reference_entry
from export.gate import diagnoses, gate_metrics, line_diagnosis, margin_diagnosis, top2_margin, verdict
from export.report import guard_line
from runtime.artifact_kinds import PRECISIONS, QUANTIZED_PRECISIONS
from runtime.bundle import Bundle
from runtime.errors import BundleError
from runtime.fitness import LineTargets

LABELS = ["defect", "ok"]


def _probs(pred: np.ndarray) -> np.ndarray:
    p = np.full((len(pred), 2), 0.1, np.float32)
    p[np.arange(len(pred)), pred] = 0.9
    return p


@pytest.fixture
def perfect():
    y = np.array([0] * 50 + [1] * 50)
    return y, _probs(y)


def _gate(probs, ref, y, precision):
    m = gate_metrics(probs, ref, y, LABELS)
    ref_summary = gate_metrics(ref, ref, y, LABELS)
    return m, verdict(m, ref_summary, precision, GatePolicy())


def test_identical_outputs_pass_with_zero_drop(perfect):
    y, ref = perfect
    m, (status, reasons) = _gate(ref.copy(), ref, y, "fp32")
    assert status == "passed" and reasons == []
    assert m["agreement"] == 1.0 and m["top1_drop"] == 0.0 and m["max_abs_dprob"] == 0.0


def test_one_missed_defect_in_fifty_is_a_two_point_recall_drop(perfect):
    y, ref = perfect
    pred = y.copy()
    pred[0] = 1  # a defect called ok
    m, (status, reasons) = _gate(_probs(pred), ref, y, "int8")
    assert m["top1_drop"] == pytest.approx(1.0)  # exactly at the limit: allowed
    assert m["recall_drop"] == {"defect": pytest.approx(2.0), "ok": 0.0}
    assert status == "rejected" and len(reasons) == 1
    assert "recall of 'defect' drops 2.00 points (100.00% -> 98.00%)" in reasons[0]


def test_agreement_floor_depends_on_precision(perfect):
    y, ref = perfect
    pred = y.copy()
    pred[0], pred[50] = 1, 0  # swap one each way: top-1 drop 2 points, agreement 98%
    policy = GatePolicy(max_top1_drop=5, max_recall_drop=5)
    m = gate_metrics(_probs(pred), ref, y, LABELS)
    ref_summary = gate_metrics(ref, ref, y, LABELS)
    assert m["agreement"] == pytest.approx(0.98)
    for precision in PRECISIONS:
        status, reasons = verdict(m, ref_summary, precision, policy)
        if precision in QUANTIZED_PRECISIONS:
            assert status == "passed", precision  # quantized floor 98%
        else:
            assert status == "rejected" and f"{precision} needs >= 99.50%" in reasons[0]


def _constant_calibration_copy(run: Path, root: Path) -> Path:
    """Copy of ``run`` whose train split (the calibration source) is all-black images."""
    manifest = json.loads((run / "run.json").read_text())
    copy = root / "run"
    shutil.copytree(run, copy, symlinks=True)
    data = root / "data"
    for split in ("val", "test"):  # the gate images stay the real ones
        for line in (copy / "splits" / f"{split}.txt").read_text().splitlines():
            rel = line.split("\t")[0]
            (data / rel).parent.mkdir(parents=True, exist_ok=True)
            if not (data / rel).exists():
                os.symlink(Path(manifest["data_dir"]) / rel, data / rel)
    (data / "constant").mkdir()
    h, w = manifest["input"]["height"], manifest["input"]["width"]
    rows = []
    for i in range(8):
        cv2.imwrite(str(data / "constant" / f"black_{i}.png"), np.zeros((h, w, 3), np.uint8))
        rows.append(f"constant/black_{i}.png\t{manifest['labels'][i % len(manifest['labels'])]}\n")
    (copy / "splits" / "train.txt").write_text("".join(rows))
    manifest["data_dir"] = str(data)
    (copy / "run.json").write_text(json.dumps(manifest))
    return copy


def test_int8_calibrated_on_constant_images_is_rejected_with_nonzero_exit(tiny_run, tmp_path, capsys):
    run = _constant_calibration_copy(Path(tiny_run), tmp_path)
    out = tmp_path / "bundle"
    rc = main(["--run", str(run), "--out", str(out), "--formats", "tflite-int8", "--calibration-size", "8"])
    err = capsys.readouterr().err
    assert rc == 3
    assert "tflite-int8 rejected" in err and "points" in err and "agrees with the reference on" in err
    doc = json.loads((out / "bundle.json").read_text())
    (entry,) = doc["artifacts"]
    assert entry["gate"]["status"] == "rejected" and entry["gate"]["reasons"]
    assert entry["gate"]["metrics"]["agreement"] < 0.98
    assert "❌" in (out / "report.md").read_text()
    with pytest.raises(BundleError, match="gate rejected"):  # the device refuses it by default
        Bundle.load(out).select(precision="int8")


def test_an_exact_tie_broken_by_rounding_is_not_a_disagreement():
    # The reference cannot tell the classes apart on these images (p = 0.5 / 0.5): which one its
    # argmax returns is decided by float rounding, which differs between CPUs' kernels.
    y = np.array([0] * 10 + [1] * 10)
    ref = np.full((20, 2), 0.5, np.float32)
    ref[10:] = [0.1, 0.9]
    art = ref.copy()
    art[:10] = [0.49999, 0.50001]  # within 1e-4 of the reference, but argmax flips to "ok"
    m = gate_metrics(art, ref, y, LABELS, tie_tolerance=GatePolicy().tie_tolerance)
    assert m["ties"] == 10 and m["agreement"] == 1.0 and m["top1_drop"] == 0.0
    assert verdict(m, gate_metrics(ref, ref, y, LABELS), "fp32", GatePolicy()) == ("passed", [])
    untied = gate_metrics(art, ref, y, LABELS, tie_tolerance=0.0)  # no tolerance: the rounding decides
    assert untied["ties"] == 0 and untied["agreement"] == 0.5


def test_a_real_disagreement_still_fails_the_gate(perfect):
    y, ref = perfect
    art = ref.copy()
    art[:5] = [0.4, 0.6]  # 0.5 away from the reference: a different answer, not a tie
    m = gate_metrics(art, ref, y, LABELS, tie_tolerance=GatePolicy().tie_tolerance)
    status, reasons = verdict(m, gate_metrics(ref, ref, y, LABELS), "fp32", GatePolicy())
    assert m["ties"] == 0 and m["agreement"] == pytest.approx(0.95)
    assert status == "rejected" and any("agrees with the reference on 95.00%" in r for r in reasons)


def test_nan_outputs_are_rejected_by_name(perfect):
    y, ref = perfect
    art = ref.copy()
    art[:3] = np.nan  # what an fp32 graph gives when an activation overflows to inf
    m = gate_metrics(art, ref, y, LABELS, tie_tolerance=1e-4)
    status, reasons = verdict(m, gate_metrics(ref, ref, y, LABELS), "fp32", GatePolicy())
    assert m["non_finite"] == 3 and m["max_abs_dprob"] == pytest.approx(0.0)
    assert status == "rejected" and "NaN or infinite probabilities on 3 of 100" in reasons[0]


def test_every_rate_carries_its_count_and_interval(perfect):
    y, ref = perfect
    pred = y.copy()
    pred[:2] = 1  # 2 of 50 defects missed
    m = gate_metrics(_probs(pred), ref, y, LABELS)
    assert m["top1_ci"]["k"] == 98 and m["top1_ci"]["n"] == 100
    assert m["per_class_recall_ci"]["defect"]["k"] == 48 and m["per_class_recall_ci"]["defect"]["n"] == 50
    assert m["agreement_ci"]["k"] == 98
    low, high = m["top1_ci"]["low"], m["top1_ci"]["high"]
    assert low < m["top1"] < high


def test_agreement_bound_lower_needs_enough_images_to_be_sure(perfect):
    y, ref = perfect  # 100 of 100 agree: the 95% lower bound is 96.3%, under the 99.5% fp32 floor
    m = gate_metrics(ref.copy(), ref, y, LABELS)
    assert verdict(m, m, "fp32", GatePolicy())[0] == "passed"
    status, reasons = verdict(m, m, "fp32", GatePolicy(agreement_bound="lower"))
    assert status == "rejected" and "100 of 100" in reasons[0] and "lower bound" in reasons[0]
    assert verdict(m, m, "int8", GatePolicy(agreement_bound="lower", min_agreement_quant=95.0))[0] == "passed"


def test_gate_policy_refuses_an_unknown_bound():
    with pytest.raises(ValueError, match="agreement_bound must be one of"):
        GatePolicy(agreement_bound="upper")


def _defect_scores(scores: list[float]) -> np.ndarray:
    s = np.array(scores, np.float32)
    return np.stack([s, 1 - s], axis=1)


def test_at_threshold_values_are_the_point_values_of_their_rates():
    y_val, y_test = np.array([0] * 20 + [1] * 20), np.array([0, 0, 0, 0, 1, 1, 1, 1])
    val = _defect_scores([0.95] * 20 + [0.05] * 20)  # cleanly separated: a threshold in 0.05..0.95
    # 2 of 4 defects caught, 1 of 4 good parts flagged
    test = _defect_scores([0.97, 0.97, 0.01, 0.01, 0.97, 0.01, 0.01, 0.01])
    empty = np.zeros((0, 8, 8, 3), np.uint8)
    data, run = EvalData(empty, y_test, empty, y_val), SimpleNamespace(labels=LABELS, ok_label="ok")
    d = decision_summary(Predictions(test, val), data, run, target_far=0.05)
    assert d["defect_recall_at_threshold"] == d["defect_recall_at_threshold_ci"]["value"] == 0.5
    assert d["false_alarm_rate_at_threshold"] == d["false_alarm_rate_at_threshold_ci"]["value"] == 0.25
    no_good = EvalData(empty, y_test[:4], empty, y_val)
    d = decision_summary(Predictions(test[:4], val), no_good, run, target_far=0.05)
    assert d["false_alarm_rate_at_threshold"] is None and d["false_alarm_rate_at_threshold_ci"]["n"] == 0


def test_thresholds_lowered_for_the_line_recall_target_say_so_in_the_report():
    # 30 good val parts, one of them scoring 0.97 as a defect; 20 val defects at 0.6..0.9.
    y_val = np.array([1] * 30 + [0] * 20)
    val = _defect_scores([0.97] + [0.01] * 29 + list(np.linspace(0.6, 0.9, 20)))
    y_test, test = np.array([1, 1, 0, 0]), _defect_scores([0.01, 0.02, 0.7, 0.8])
    empty = np.zeros((0, 8, 8, 3), np.uint8)
    data, run = EvalData(empty, y_test, empty, y_val), SimpleNamespace(labels=LABELS, ok_label="ok")
    aimed = decision_summary(Predictions(test, val), data, run, 0.01)
    assert aimed["defect_recall_at_threshold"] == 0.0  # over the outlier: no defect caught
    d = decision_summary(Predictions(test, val), data, run, 0.01, LineTargets())
    assert d["defect_recall_at_threshold"] == 1.0 and d["false_alarm_rate_at_threshold"] == 0.0
    guard = d["threshold_selection"]["overall"]["recall_guard"]
    line = guard_line(guard)
    assert "0/20 val defects" in line and "95% recall target" in line and "(20/20 caught)" in line
    assert guard_line(aimed["threshold_selection"]["overall"]["recall_guard"]) == ""


def test_flips_on_images_the_reference_barely_decides_are_named_as_thin_margins():
    labels = ["defect", "ok"]
    y = np.array([0, 1, 1, 0])
    ref = np.array([[0.9, 0.1], [0.45, 0.55], [0.2, 0.8], [0.95, 0.05]], np.float32)
    thin_flip = ref.copy()
    thin_flip[1] = (0.56, 0.44)  # the 0.10-margin image goes the other way
    m = gate_metrics(thin_flip, ref, y, labels)
    assert (m["flips"], m["thin_margin_flips"], m["thin_margin_images"]) == (1, 1, 1)
    words = margin_diagnosis("tflite-int8", m)
    assert words.startswith("tflite-int8: 1 of its 1 disagreements")
    assert "too thin" in words and "Fix:" in words
    confident_flip = ref.copy()
    confident_flip[3] = (0.1, 0.9)  # a 0.9-margin image flipped: a broken conversion, not a thin margin
    m = gate_metrics(confident_flip, ref, y, labels)
    assert (m["flips"], m["thin_margin_flips"]) == (1, 0) and margin_diagnosis("x", m) is None
    assert np.allclose(top2_margin(ref), [0.8, 0.1, 0.6, 0.9])


def _line_gate(artifact_test: np.ndarray, ref_test: np.ndarray, y_test: np.ndarray) -> dict:
    """gate_entry of an artifact against a reference whose val split fits both the same thresholds."""
    y_val = np.array([0] * 20 + [1] * 40)
    val = _defect_scores([0.9] * 20 + [0.01] * 40)
    empty = np.zeros((0, 8, 8, 3), np.uint8)
    data, run = EvalData(empty, y_test, empty, y_val), SimpleNamespace(labels=LABELS, ok_label="ok")
    config = ExportConfig()
    ref = Predictions(ref_test, val)
    with_model = SimpleNamespace(**vars(run), manifest={"files": {"keras_model": "m"}})
    reference = reference_entry(ref, data, with_model, config)
    return gate_entry(Predictions(artifact_test, val), ref, reference, data, run, "int8", config)


def test_a_rejected_artifact_says_whether_its_flips_change_what_the_line_flags():
    y = np.array([0] * 10 + [1] * 40)
    ref = _defect_scores([0.8] * 10 + [0.01] * 40)
    # A defect's top-1 flips to "ok" (score 0.8 -> 0.4) but stays far over the threshold (0.01 < t < 0.9):
    # the gate rejects the recall drop, the line flags the same parts.
    entry = _line_gate(_defect_scores([0.4] + [0.8] * 9 + [0.01] * 40), ref, y)
    m = entry["gate"]["metrics"]
    assert entry["gate"]["status"] == "rejected" and m["flips"] == 1
    assert m["line_changes"]["changed"] == 0 and m["line_changes"]["flagged"] == 10
    words = line_diagnosis("tflite-int8", m)
    assert "leave the line's decisions as they were" in words and "--allow-rejected" in words
    assert "same 10 of 50 test parts" in words
    # The same defect pushed under every threshold: now the line passes it.
    entry = _line_gate(_defect_scores([0.001] + [0.8] * 9 + [0.01] * 40), ref, y)
    m = entry["gate"]["metrics"]
    assert (m["line_changes"]["changed"], m["line_changes"]["defects_passed"]) == (1, 1)
    words = line_diagnosis("tflite-int8", m)
    assert "decides 1 of 50 test parts differently" in words
    assert "1 defect(s) the reference flags passed" in words
    assert "--allow-rejected" not in words and words in diagnoses("tflite-int8", m)


def test_sorting_bundles_and_agreeing_artifacts_get_no_line_diagnosis(perfect):
    y, probs = perfect
    assert line_diagnosis("x", gate_metrics(probs, probs, y, LABELS)) is None  # no line_changes: sorting
    entry = _line_gate(_defect_scores([0.8] * 10 + [0.01] * 40), _defect_scores([0.8] * 10 + [0.01] * 40),
                       np.array([0] * 10 + [1] * 40))
    assert entry["gate"]["metrics"]["line_changes"]["changed"] == 0
    assert line_diagnosis("x", entry["gate"]["metrics"]) is None  # nothing flipped: nothing to say
