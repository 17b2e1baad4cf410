"""Bundle reading: validation, artifact selection by gate/precision, sha256 verification."""

import importlib.util
import json

import pytest

from runtime.bundle import Bundle
from runtime.contract import InputContract
from runtime.errors import BundleError
from runtime.fsutil import sha256_file


def _entry(root, name, fmt, precision, status="passed"):
    path = root / f"model_{precision}.{fmt}"
    path.write_bytes(f"{name} bytes".encode())
    return {"name": name, "file": path.name, "format": fmt, "precision": precision,
            "sha256": sha256_file(path), "size_bytes": path.stat().st_size,
            "backends": ["litert" if fmt == "tflite" else "onnxruntime"],
            "gate": {"status": status}, "thresholds": {"defect": 0.5}}


@pytest.fixture()
def bundle_dir(tmp_path):
    arts = [_entry(tmp_path, "tflite-fp32", "tflite", "fp32"),
            _entry(tmp_path, "tflite-int8", "tflite", "int8", status="rejected"),
            _entry(tmp_path, "onnx-int8", "onnx", "int8")]
    meta = {"schema_version": 1, "labels": ["defect", "ok"], "ok_label": "ok",
            "input": InputContract(32, 32).to_dict(), "artifacts": arts}
    (tmp_path / "bundle.json").write_text(json.dumps(meta))
    return tmp_path


def test_select_skips_rejected_unless_allowed(bundle_dir):
    b = Bundle.load(bundle_dir)
    assert b.defect_labels == ["defect"]
    assert b.select().name == "tflite-fp32"  # int8 TFLite preferred, but it was rejected
    if importlib.util.find_spec("onnxruntime"):
        assert b.select(precision="int8").name == "onnx-int8"
    else:  # a board with LiteRT only (as devices/install/pi.sh sets up): the reason and the fix
        with pytest.raises(BundleError, match="onnx-int8: no installed engine .* pip install onnxruntime"):
            b.select(precision="int8")
    assert b.select(precision="int8", allow_rejected=True).name == "tflite-int8"
    with pytest.raises(BundleError, match="gate rejected"):
        b.select(precision="int8", fmt="tflite")


def test_verify_refuses_modified_file(bundle_dir):
    b = Bundle.load(bundle_dir)
    a = b.get("tflite-fp32")
    assert b.verify(a) == bundle_dir / a.file
    (bundle_dir / a.file).write_bytes(b"tampered")
    with pytest.raises(BundleError, match="sha256 mismatch"):
        b.verify(a)
    (bundle_dir / a.file).unlink()
    with pytest.raises(BundleError, match="missing"):
        b.verify(a)


def test_decider_overrides(bundle_dir):
    b = Bundle.load(bundle_dir)
    d = b.decider(b.get("tflite-fp32"), overrides={"defect": 0.9})
    import numpy as np
    assert not d.decide(np.array([0.8, 0.2])).flagged
    with pytest.raises(BundleError, match="unknown classes"):
        b.decider(b.get("tflite-fp32"), overrides={"dent": 0.2})


@pytest.mark.parametrize("mutate, match", [
    (lambda m: m.pop("labels"), "missing fields"),
    (lambda m: m.update(schema_version=99), "schema_version"),
])
def test_bad_bundle_json(bundle_dir, mutate, match):
    meta = json.loads((bundle_dir / "bundle.json").read_text())
    mutate(meta)
    (bundle_dir / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=match):
        Bundle.load(bundle_dir)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="make export"):
        Bundle.load(tmp_path)


def test_atomic_writes_get_a_normal_file_mode(tmp_path):
    """Files written atomically are readable like any other (mkstemp alone would make them 0600)."""
    import os

    from runtime.fsutil import atomic_write_bytes

    umask = os.umask(0)
    os.umask(umask)
    atomic_write_bytes(tmp_path / "f.bin", b"x")
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o666 & ~umask
