"""Real data (slow): the NEU steel-surface set at the defaults, and its line-like hard variant.

``neu_det`` has no good class; as a new user would, one type (``crazing``) is taken as the good
parts. The hard variant (``python -m train.hardset``) keeps all of it and 20-40 photos of every
other type, each cropped to an elongated 2:1 or 1:3 frame of mixed size. Both train with the
defaults (only data, ok label and the shared weights given) and export with the defaults.
Skips when ``../shared/data`` is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.train_fixtures import SHARED, SHARED_WEIGHTS
from train.evidence import resolved

pytestmark = pytest.mark.slow

NEU = SHARED / "neu_det"
GOOD = "crazing"


def _train_and_export(data, root, name: str) -> tuple[dict, dict, list, Path]:
    from export.config import ExportConfig
    from export.pipeline import export
    from train.config import resolve
    from train.pipeline import train

    run = train(resolve({"data": str(data), "ok_label": GOOD, "weights": str(SHARED_WEIGHTS),
                         "out": str(root / "runs"), "name": name, "threads": 2}))
    out = root / "bundles" / name
    export(ExportConfig(run=str(run), out=str(out), keep_going=True))
    history = json.loads((run / "history.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    return metrics, json.loads((out / "bundle.json").read_text()), history, out


@pytest.fixture(scope="module")
def neu(tmp_path_factory):
    if not NEU.is_dir() or not SHARED_WEIGHTS.is_file():
        pytest.skip(f"real data not found: expected {NEU} and {SHARED_WEIGHTS}")
    return _train_and_export(NEU, tmp_path_factory.mktemp("neu"), "neu")


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    if not NEU.is_dir() or not SHARED_WEIGHTS.is_file():
        pytest.skip(f"real data not found: expected {NEU} and {SHARED_WEIGHTS}")
    from train.hardset import build

    root = tmp_path_factory.mktemp("neu_hard")
    build(NEU, root / "neu_hard", GOOD)
    return _train_and_export(root / "neu_hard" / "train", root, "neu_hard")


def _artifact(bundle: dict, name: str) -> dict:
    return next(a for a in bundle["artifacts"] if a["name"] == name)


def _stages_never_end_worse(history: list) -> None:
    head, tune = history
    # Step 0 of stage 2 is the model stage 1 ended with, and the run keeps the better of the two.
    assert tune["start_val_loss"] == pytest.approx(min(head["val_loss"]), rel=1e-3, abs=1e-5)
    kept = tune["soup"]["val_loss"] if "soup" in tune else min(tune["val_loss"])
    kept = kept if tune["improved"] else tune["start_val_loss"]
    assert kept <= tune["start_val_loss"]
    if "soup" not in tune:  # fine-tuning is kept only where its gain is evidence (train.evidence)
        ev = tune["evidence"]
        gain = min(tune["val_loss"]) < tune["start_val_loss"]
        assert tune["improved"] is (gain and resolved(ev, ev["min_z"])), ev


def test_neu_det_at_the_defaults_is_fit_and_its_fp32_artifacts_pass(neu):
    metrics, bundle, history, _ = neu
    _stages_never_end_worse(history)
    assert metrics["test"]["accuracy"] >= 0.98, metrics["test"]["accuracy_ci"]  # measured: 270/270
    assert bundle["fitness"]["fit"] is True, bundle["fitness"]
    for name in ("tflite-fp32", "onnx-fp32"):
        gate = _artifact(bundle, name)["gate"]
        assert gate["status"] == "passed", gate["reasons"]


@pytest.mark.parametrize("name", ["tflite-int8", "onnx-int8"])
def test_neu_det_int8_passes_the_gate_with_its_one_lossy_op_in_float(neu, name):
    _, bundle, _, _ = neu
    entry = _artifact(bundle, name)
    # Fully integer TFLite flipped 4 of 270 (98.52%), ONNX 3: MobileNetV2's first depthwise convolution
    # is off by 1.36 quantization steps RMS on these grey textures; kept float, both 270/270
    # (export.int8_fallback, export.onnx_fallback). Which other ops cross the limit depends on the
    # trained weights, so on the CPU: on a Xeon with oneDNN on (2026-12-06) the classifier's
    # FULLY_CONNECTED measured 1.90 steps and was kept float first, and both agreed on 270/270.
    q = entry["quantization"]
    assert "expanded_conv_depthwise" in [op["layer"] for op in q["float_ops"]], q
    gate = entry["gate"]
    if gate["status"] != "passed":
        # On a 2-core Intel Xeon (AVX-512 VNNI, no AMX; 2026-12-05) TFLite int8 with that op float agreed
        # on 270/270 val images and flipped one test scratch (269/270): one image of a 45-photo class is
        # 2.2 points of its recall, over the 1-point limit. An EPYC with VNNI passed at 270/270. More
        # than one flipped image is a failure on any CPU; one is this known, CPU-dependent rejection.
        agree = gate["metrics"]["agreement_ci"]
        assert agree["n"] - agree["k"] <= 1, gate["reasons"]
        pytest.xfail(f"{name} rejected on this CPU at {agree['k']}/{agree['n']}: {gate['reasons']}")


def test_hard_variant_at_the_defaults_is_fit_for_the_line(hard):
    metrics, bundle, history, _ = hard
    _stages_never_end_worse(history)
    assert metrics["recipe"]["searched"] is True
    ref = bundle["reference"]
    # Measured on AVX-512 machines: top-1 64/66, defects caught 20/21, good parts flagged 1/45 with
    # per-class weights; 65/66, 21/21, 1/45 with the line's (the default since 2026-12-06). Each floor
    # leaves at least one image of slack: another CPU's kernels train a slightly different model.
    assert ref["top1"] >= 0.92, ref["top1_ci"]
    assert ref["defect_recall_at_threshold"] >= 0.90, ref["defect_recall_at_threshold_ci"]
    assert ref["false_alarm_rate_at_threshold"] <= 0.05, ref["false_alarm_rate_at_threshold_ci"]
    fitness, targets = bundle["fitness"], bundle["fitness"]["targets"]
    assert fitness["fit"] is (ref["defect_recall_at_threshold"] >= targets["min_defect_recall"]
                              and ref["false_alarm_rate_at_threshold"] <= targets["max_false_alarm_rate"])
    for name in ("tflite-fp32", "onnx-fp32"):
        assert _artifact(bundle, name)["gate"]["status"] == "passed"


def test_hard_variant_int8_tflite_passes_the_gate(hard):
    """Since fine-tuning needs evidence (train.evidence) the variant's runs keep the head, whose int8 TFLite
    artifact passed on all five splits measured (2026-12-07, AMD EPYC with AVX-512 VNNI: 66/66 each);
    the fine-tuned models of three of them had been rejected, one or two test photos flipped."""
    _, bundle, history, _ = hard
    gate = _artifact(bundle, "tflite-int8")["gate"]
    if gate["status"] != "passed":
        # One flipped photo of a 3-photo class is 33 points of its recall: another CPU's kernels train a
        # slightly different model, and one flip there is a known, CPU-dependent rejection; two are not.
        agree = gate["metrics"]["agreement_ci"]
        assert agree["n"] - agree["k"] <= 1, gate["reasons"]
        pytest.xfail(f"tflite-int8 rejected on this CPU at {agree['k']}/{agree['n']} (kept stage: "
                     f"{'finetune' if history[1]['improved'] else 'head'}): {gate['reasons']}")


# Floors leave a few images of slack for another CPU's kernels (ONNX Runtime's int8 ones differ most).
HOLDOUT_FLOORS = {"tflite-fp32": 194, "tflite-int8": 194, "onnx-int8": 188}


@pytest.mark.parametrize("name", sorted(HOLDOUT_FLOORS))
def test_hard_variant_catches_the_hold_out_defects_at_the_bundles_thresholds(hard, name):
    """200 defect photos no split has seen (40 per type, cropped as the variant), through the device's
    path: the bundle's artifact, its own thresholds, the runtime's decode and preprocessing.
    Measured on an AVX-512 machine: fp32 200/200 with thresholds fitted to the good parts' score tail
    (193/200 with the earlier thresholds mid-way between the good parts and the weakest val defect);
    TFLite int8 198/200 with the two ops that validation kept float (196 with the first depthwise
    alone); ONNX int8 195/200 with the first depthwise float (183 fully integer)."""
    from runtime.bundle import Bundle
    from runtime.image_io import read_image
    from runtime.preprocess import prepare_rgb

    bundle_dir = hard[3]
    photos = sorted((bundle_dir.parents[1] / "neu_hard" / "holdout").rglob("*.png"))
    assert len(photos) == 200, len(photos)
    bundle = Bundle.load(bundle_dir)
    artifact = bundle.get(name)
    decider = bundle.decider(artifact)
    with bundle.open(artifact) as engine:
        caught = [decider.decide(engine.run_one(prepare_rgb(read_image(p), bundle.contract))).flagged
                  for p in photos]
    assert sum(caught) >= HOLDOUT_FLOORS[name], f"{name}: {sum(caught)} of 200 hold-out defects caught"


@pytest.mark.xfail(reason="not reached yet: with the line's class weights (2026-12-06, Xeon) top-1 98.5% "
                          "(65/66), at the thresholds 21/21 defects caught but 1/45 good parts flagged "
                          "(2.2%), and int8 TFLite rejected: one test patches photo flips (P(patches) 0.82 "
                          "fp32, 0.03 int8). 2026-12-07, AVX2-only EPYC: 65/66, 21/21, 1/45; int8 TFLite "
                          "rejected (its bias-corrected build passes; validation chose the one as trained); "
                          "2026-12-07, AVX-512 VNNI EPYC: the same; "
                          "with MSE activation ranges that photo's int8 P(patches) is 0.36, still a flip. "
                          "Since fine-tuning needs evidence (2026-12-07, AVX-512 VNNI EPYC) the run keeps "
                          "the head: 64/66, 20/21, 1/45, int8 TFLite passed",
                   strict=False)
def test_hard_variant_meets_the_line_targets_set_for_it(hard):
    _, bundle, _, _ = hard
    ref = bundle["reference"]
    assert ref["top1"] >= 0.95
    assert ref["defect_recall_at_threshold"] >= 0.98 and ref["false_alarm_rate_at_threshold"] <= 0.02
    assert _artifact(bundle, "tflite-int8")["gate"]["status"] == "passed"
