"""Real data (slow): the casting photos fine-tuned from the shared ImageNet MobileNetV2 weights.

Run with ``make test-slow`` (``pytest -m slow``); skips when ``../shared/data`` is absent.
"""

import json
import tomllib

import pytest

from tests.fixtures.train_fixtures import CASTING_CONFIG


# Floors that hold on any x86-64 CPU. Deterministic training gives the same model on the same CPU
# type, not across types: oneDNN picks its kernels by instruction set. Measured on the same split:
# 240/240 (defect recall 120/120) on an EPYC with AVX-512 VNNI and on a Xeon with AMX; with oneDNN
# capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2) 238/240, defect recall 118/120 -- a CI machine's figures too.
# Those runs had oneDNN's rewrites off (as the suite did until 2026-12-06); with them on, as
# python -m train runs: 238/240, defect recall 118/120, on a Xeon with AVX-512 VNNI and no AMX.
@pytest.mark.slow
def test_casting_reaches_98_percent_accuracy_and_defect_recall(casting_run):
    m = json.loads((casting_run / "run.json").read_text())
    assert m["ok_label"] == "ok_front" and m["labels"] == ["def_front", "ok_front"]  # found by the rule
    size = tomllib.loads(CASTING_CONFIG.read_text())["train"]["image_size"]
    assert m["weights"]["used"] == "path" and m["input"]["height"] == size
    test = json.loads((casting_run / "metrics.json").read_text())["test"]
    assert test["n"] >= 200
    assert test["accuracy"] >= 0.98, test
    assert test["defect_recall"] >= 0.975, test  # at most 3 of 120 defects missed
    history = json.loads((casting_run / "history.json").read_text())
    assert [h["stage"] for h in history] == ["head", "finetune"]
