"""Sorting by class (``--ok-label none``): a set without a good class, every class a label.

Thresholds and events per class; train, export and the camera program end to end on a tiny set.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from runtime.decision import Decider, choose_thresholds
from tests.runtime_support import jsonl, run_camera
from train.errors import DataError
from train.intake.scan import detect_ok_label

LABELS = ["crack", "pit", "scratch"]


def test_ok_label_none_means_sorting_and_a_misnamed_good_class_is_named():
    assert detect_ok_label(LABELS, "none") is None
    assert detect_ok_label(["none", "pit"], "none") == "none"  # a class really called so wins
    with pytest.raises(DataError, match="--ok-label none when the set has no good class"):
        detect_ok_label(LABELS)
    with pytest.raises(DataError, match="'godo' looks like a misspelt good class"):
        detect_ok_label(["godo", "pit"])


def test_sorting_thresholds_take_few_other_class_images_and_decide_per_class():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 200)
    probs = np.full((600, 3), 0.1)
    probs[np.arange(600), y] = rng.uniform(0.5, 0.8, 600)  # the true class is on top
    probs /= probs.sum(1, keepdims=True)
    thresholds, details = choose_thresholds(probs, y, LABELS, None, 0.03)
    assert set(thresholds) == set(LABELS)
    for i, lab in enumerate(LABELS):  # a class takes at most its 1% share of the other classes' images
        assert np.mean(probs[y != i, i] >= thresholds[lab]) <= 0.01
    overall = details["overall"]
    assert overall["val_decided"]["n"] == 600 and overall["val_right_when_decided"]["value"] == 1.0
    decider = Decider(LABELS, None, thresholds)
    sure = decider.decide(np.array([0.05, 0.9, 0.05]))
    assert sure.flagged and sure.label == "pit"
    unsure = decider.decide(np.array([0.34, 0.33, 0.33]))
    assert not unsure.flagged


def test_a_sorting_set_trains_exports_and_runs_with_events_per_class(tmp_path):
    from export.config import ExportConfig
    from export.pipeline import export
    from train.config import resolve
    from train.pipeline import train
    from train.synth import generate

    data = generate(tmp_path / "data", count=160, size=32, seed=3, labels="types", ok_fraction=0.25,
                    min_strength=1.5, max_strength=2.5, defect_types=("pit", "contamination"))
    shutil.rmtree(data / "ok")  # no good class left: a sorting task
    run = train(resolve({"data": str(data), "ok_label": "none", "out": str(tmp_path / "runs"), "name": "sort",
                         "weights": "none", "alpha": 0.35, "image_size": 32, "epochs_scratch": 4,
                         "batch_size": 16, "threads": 2, "verbose": False}))
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["ok_label"] is None and manifest["labels"] == ["contamination", "pit"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["fitness"]["fit"] is None and "sorting" in metrics["fitness"]["judged_on"]
    assert "defect_recall" not in metrics["test"]
    out = tmp_path / "bundle"
    export(ExportConfig(run=str(run), out=str(out), formats=("tflite-fp32",), keep_going=True))
    doc = json.loads((out / "bundle.json").read_text())
    assert doc["ok_label"] is None and doc["fitness"]["fit"] is None and doc["warnings"] == []
    art = doc["artifacts"][0]
    assert set(art["thresholds"]) == {"contamination", "pit"}
    assert art["gate"]["metrics"]["test_decided"]["n"] == doc["reference"]["n_test"]
    events = tmp_path / "events.jsonl"
    done = run_camera("--bundle", str(out), "--source", str(data / "pit" / "*.jpg"), "--headless",
                      "--events", str(events), "--k", "1", "--n", "1", "--allow-rejected", "--no-snapshots",
                      # with two classes one always reaches 0.5: every frame is decided, whatever the model
                      "--threshold", "contamination=0.5", "--threshold", "pit=0.5")
    assert done.returncode == 0, done.stderr
    starts = [e for e in jsonl(events) if e["type"] == "defect_start"]  # in sorting: a class was decided
    assert starts and {e["label"] for e in starts} <= {"contamination", "pit"}
