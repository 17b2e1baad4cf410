"""Real data (slow): the casting photos with the pretrained MobileNetV2 backbone (train's ``casting_run``).

The bar: int8 TFLite and int8 ONNX each within 0.5 point of the reference top-1, defect recall
within a point of the reference's and >= 97.5%, and every artifact through the gate. Skips when
../shared/data is absent.
"""

from __future__ import annotations

import json

import pytest

from export.config import ExportConfig
from export.pipeline import export
from export.registry import list_formats

pytestmark = pytest.mark.slow

DEFECT = "def_front"


@pytest.fixture(scope="module")
def casting_bundle(casting_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("casting_bundles") / "casting"
    export(ExportConfig(run=str(casting_run), out=str(out), keep_going=True))
    return json.loads((out / "bundle.json").read_text())


# The int8 criteria hold with casting.toml at 224 px and deterministic training: measured
# TFLite int8 0 and ONNX int8 1 of 240 test parts flipped against the fp32 reference. At 160 px
# TFLite int8 flipped 4-6, so a change of the training recipe must be re-checked here.


@pytest.mark.parametrize("name", [s.name for s in list_formats() if s.precision == "int8"])
def test_int8_within_half_a_point_of_reference_and_catches_defects(casting_bundle, name):
    ref = casting_bundle["reference"]
    entry = next(a for a in casting_bundle["artifacts"] if a["name"] == name)
    m = entry["gate"]["metrics"]
    assert abs(m["top1"] - ref["top1"]) * 100 <= 0.5, (m["top1"], ref["top1"])
    # Defect recall against the reference's, not above it: where the CPU's kernels train a reference
    # that misses 2 of 120 defects (98.3%), an int8 artifact that agrees with it misses them too. The
    # absolute floor is the training test's (97.5%).
    recall, ref_recall = m["per_class_recall"][DEFECT], ref["per_class_recall"][DEFECT]
    assert recall >= ref_recall - 0.01 and recall >= 0.975, (recall, ref_recall)
    assert m["defect_recall_at_threshold"] >= 0.975, m
    assert entry["gate"]["status"] == "passed", entry["gate"]["reasons"]


def test_every_casting_artifact_is_exported_and_passes(casting_bundle):
    assert casting_bundle["failed_exports"] == []
    assert len(casting_bundle["artifacts"]) == 7
    rejected = {a["name"]: a["gate"]["reasons"] for a in casting_bundle["artifacts"]
                if a["gate"]["status"] != "passed"}
    assert not rejected, rejected
    assert casting_bundle["reference"]["top1"] >= 0.98  # the training test's floor
