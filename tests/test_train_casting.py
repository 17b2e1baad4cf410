"""Real data (slow): the casting photos fine-tuned from the shared ImageNet MobileNetV2 weights.

Run with ``make test-slow`` (``pytest -m slow``); skips when ``../shared/data`` is absent.
"""

import json
import tomllib

import pytest

from tests.fixtures.train_fixtures import CASTING_CONFIG


@pytest.mark.slow
def test_casting_reaches_99_percent_accuracy_and_defect_recall(casting_run):
    m = json.loads((casting_run / "run.json").read_text())
    assert m["ok_label"] == "ok_front" and m["labels"] == ["def_front", "ok_front"]  # found by the rule
    size = tomllib.loads(CASTING_CONFIG.read_text())["train"]["image_size"]
    assert m["weights"]["used"] == "path" and m["input"]["height"] == size
    test = json.loads((casting_run / "metrics.json").read_text())["test"]
    assert test["n"] >= 200
    assert test["accuracy"] >= 0.99, test
    assert test["defect_recall"] >= 0.99, test
    history = json.loads((casting_run / "history.json").read_text())
    assert [h["stage"] for h in history] == ["head", "finetune"]
