"""The tiny bundle: every registered format's artifact, correct sha256s, embedded metadata, report,
runtime-loadable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from export.metadata import read_metadata
from export.registry import list_formats
from runtime.bundle import Bundle
from runtime.contract import InputContract
from runtime.fsutil import sha256_file
from tests.fixtures.export_fixtures import TINY_CALIBRATION_SIZE, TINY_LINE_TARGETS

ALL = [s.name for s in list_formats()]
GATE_METRICS = {"top1", "top1_drop", "per_class_recall", "recall_drop", "agreement", "mean_abs_dprob",
                "max_abs_dprob", "defect_recall_at_threshold", "false_alarm_rate_at_threshold",
                "confusion_matrix", "top1_ci", "per_class_recall_ci", "agreement_ci",
                "defect_recall_at_threshold_ci", "false_alarm_rate_at_threshold_ci", "ties", "non_finite"}


@pytest.fixture(scope="module")
def doc(tiny_bundle) -> dict:
    return json.loads((tiny_bundle / "bundle.json").read_text())


def test_every_format_exported_with_correct_sha256_and_size(tiny_bundle, doc):
    assert doc["failed_exports"] == []
    assert [a["name"] for a in doc["artifacts"]] == ALL
    for a in doc["artifacts"]:
        path = tiny_bundle / a["file"]
        assert sha256_file(path) == a["sha256"], a["name"]
        assert path.stat().st_size == a["size_bytes"]
        assert a["backends"] == (["litert"] if a["format"] == "tflite" else ["onnxruntime"])


def test_every_artifact_passes_the_gate_on_the_tiny_run(doc):
    # The requirement on synthetic data, int8 included; the numbers explain any failure.
    failing = {a["name"]: a["gate"]["reasons"] for a in doc["artifacts"] if a["gate"]["status"] != "passed"}
    assert not failing, failing


def test_gate_records_every_metric_and_thresholds_for_each_defect_class(doc):
    defects = [c for c in doc["labels"] if c != doc["ok_label"]]
    for a in doc["artifacts"]:
        assert GATE_METRICS <= set(a["gate"]["metrics"]), a["name"]
        assert set(a["thresholds"]) == set(defects)
        assert all(0.0 < t <= 1.0 for t in a["thresholds"].values())
        assert a["threshold_selection"]["split"] == "val"
    assert doc["gate_policy"]["max_top1_drop"] == 1.0 and doc["gate_policy"]["min_agreement_quant"] == 98.0
    assert {"top1", "per_class_recall", "thresholds"} <= set(doc["reference"])


def test_runtime_loads_the_bundle_and_picks_int8_tflite(tiny_bundle):
    bundle = Bundle.load(tiny_bundle)
    chosen = bundle.select()
    assert chosen.name == "tflite-int8"
    with bundle.open(chosen, threads=1) as backend:
        assert backend.input_shape == (bundle.contract.height, bundle.contract.width)


@pytest.mark.parametrize("name", ALL)
def test_each_artifact_carries_labels_and_input_contract_in_its_metadata(tiny_bundle, doc, name, tmp_path):
    entry = next(a for a in doc["artifacts"] if a["name"] == name)
    lone = tmp_path / entry["file"]  # a lone copy, away from bundle.json and labels.txt
    shutil.copyfile(tiny_bundle / entry["file"], lone)
    meta = read_metadata(lone)
    assert meta["labels"] == doc["labels"] and meta["ok_label"] == doc["ok_label"]
    assert InputContract.from_dict(meta["input"]) == InputContract.from_dict(doc["input"])
    assert (meta["precision"], meta["format"]) == (entry["precision"], entry["format"])
    assert meta["artifact"] == name


def test_report_has_one_row_per_artifact_and_a_confusion_matrix_each(tiny_bundle, doc):
    md = (tiny_bundle / "report.md").read_text()
    html = (tiny_bundle / "report.html").read_text()
    for a in doc["artifacts"]:
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| {a['name']} |"))
        assert ("✅" in row) == (a["gate"]["status"] == "passed")
        assert a["name"] in html
        png = tiny_bundle / "plots" / f"confusion_{a['name']}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in html and "agreement" in md
    placement = doc["reference"]["threshold_selection"]["overall"]["placement"]["placement"]
    assert ("No defect threshold is under" if placement == "fitted" else "Thresholds sit mid-way") in md
    # The uncertainty table: every artifact's top-1 as k/n with its 95% interval.
    for a in doc["artifacts"]:
        ci = a["gate"]["metrics"]["top1_ci"]
        assert f"({ci['k']}/{ci['n']}; 95% CI" in md and f"({ci['k']}/{ci['n']}; 95% CI" in html


def test_a_validation_split_too_small_for_the_target_is_named_in_bundle_and_report(tiny_bundle, doc):
    val = (Path(doc["provenance"]["run_dir"]) / "splits" / "val.txt").read_text().splitlines()
    n_ok = sum(1 for ln in val if ln.endswith(f"\t{doc['ok_label']}"))
    assert n_ok < 300  # the tiny run: far fewer good parts than a 1% target needs
    (warning, *_) = doc["warnings"]
    assert f"validation split has {n_ok} {doc['ok_label']!r} images" in warning and "at least 300" in warning
    assert "## Warnings" in (tiny_bundle / "report.md").read_text()


def test_bundle_files_labels_config_provenance_and_latest_link(tiny_bundle, doc):
    assert (tiny_bundle / "labels.txt").read_text().split() == doc["labels"]
    config = json.loads((tiny_bundle / "export_config.json").read_text())
    assert config["int8"]["calibration_size"] == TINY_CALIBRATION_SIZE and config["keep_going"] is True
    prov = doc["provenance"]
    assert prov["run"] and prov["config_hash"] and "onnxruntime" in prov["export_versions"]
    assert (tiny_bundle.parent / "latest").resolve() == tiny_bundle.resolve()
    assert not [p for p in tiny_bundle.parent.iterdir() if p.name.startswith(".")]  # no staging left
    assert Path(tiny_bundle / "model_int8.tflite").stat().st_mode & 0o044  # readable by others


def test_the_reference_is_judged_against_the_line_targets_at_the_thresholds(tiny_bundle, doc):
    f, ref = doc["fitness"], doc["reference"]
    recall, far = f["checks"]
    assert recall["rate"] == ref["defect_recall_at_threshold_ci"]
    assert far["rate"] == ref["false_alarm_rate_at_threshold_ci"]
    assert f["targets"] == TINY_LINE_TARGETS  # the fixture's; the defaults are 0.95 and 0.05
    t = TINY_LINE_TARGETS
    assert f["fit"] == (recall["rate"]["value"] >= t["min_defect_recall"]
                        and far["rate"]["value"] <= t["max_false_alarm_rate"])
    report = (tiny_bundle / "report.md").read_text()
    assert "## Fitness for the line" in report and "at the bundle's thresholds" in report


def test_train_judges_fitness_on_the_test_split(tiny_run):
    m = json.loads((tiny_run / "metrics.json").read_text())
    recall, far = m["fitness"]["checks"]
    assert recall["rate"] == m["test"]["defect_recall_ci"] and far["rate"] == m["test"]["false_alarm_rate_ci"]
    ok = m["test"]["per_class"][m["ok_label"]]
    assert far["rate"]["n"] == ok["support"] and far["rate"]["k"] == ok["support"] - ok["recall_ci"]["k"]
