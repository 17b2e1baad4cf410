"""The accuracy gate: its arithmetic, and a deliberately damaged int8 artifact being rejected."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from export.__main__ import main
from export.config import GatePolicy
from export.gate import gate_metrics, verdict
from runtime.bundle import Bundle
from runtime.errors import BundleError

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
    assert verdict(m, ref_summary, "int8", policy)[0] == "passed"  # quantized floor 98%
    assert verdict(m, ref_summary, "dynamic", policy)[0] == "passed"
    status, reasons = verdict(m, ref_summary, "fp16", policy)
    assert status == "rejected" and "fp16 needs >= 99.50%" in reasons[0]


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
