"""Bad input to export: each a clear error (exit 2) naming the fix, and nothing written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from export.__main__ import main


def _export(capsys, run, out, *extra) -> tuple[int, str]:
    rc = main(["--run", str(run), "--out", str(out), *extra])
    return rc, capsys.readouterr().err


def _manifest(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def test_missing_run_directory(capsys, tmp_path):
    rc, err = _export(capsys, tmp_path / "runs" / "nope", tmp_path / "b")
    assert rc == 2 and "no such run directory" in err and "python -m train" in err
    assert "Traceback" not in err and not (tmp_path / "b").exists()


def test_run_without_manifest_is_incomplete(capsys, fake_run, tmp_path):
    (fake_run / "run.json").unlink()
    rc, err = _export(capsys, fake_run, tmp_path / "b")
    assert rc == 2 and "incomplete run directory (no run.json)" in err


def test_run_missing_its_saved_model(capsys, fake_run, tmp_path):
    shutil.rmtree(fake_run / "saved_model")
    rc, err = _export(capsys, fake_run, tmp_path / "b")
    assert rc == 2 and "missing saved_model" in err and "re-run training" in err


def test_run_without_splits(capsys, fake_run, tmp_path):
    shutil.rmtree(fake_run / "splits")
    rc, err = _export(capsys, fake_run, tmp_path / "b")
    assert rc == 2 and "no split lists for ['train', 'val', 'test']" in err


def test_empty_test_split(capsys, fake_run, tmp_path):
    (fake_run / "splits" / "test.txt").write_text("")
    rc, err = _export(capsys, fake_run, tmp_path / "b")
    assert rc == 2 and "test split is empty" in err and "accuracy gate" in err
    assert not (tmp_path / "b").exists()


def test_images_gone_since_training(capsys, fake_run, tmp_path):
    first = (fake_run / "splits" / "test.txt").read_text().split("\t")[0]
    (Path(_manifest(fake_run)["data_dir"]) / first).unlink()
    rc, err = _export(capsys, fake_run, tmp_path / "b")
    assert rc == 2 and first in err and "data changed since training" in err


def test_data_dir_gone(capsys, fake_run, tmp_path):
    shutil.rmtree(_manifest(fake_run)["data_dir"])
    rc, err = _export(capsys, fake_run, tmp_path / "b")
    assert rc == 2 and "the run's images are gone" in err


def test_labels_disagree_with_manifest(capsys, fake_run, tmp_path):
    (fake_run / "labels.txt").write_text("ok\ndefect\n")
    rc, err = _export(capsys, fake_run, tmp_path / "b")
    assert rc == 2 and "disagrees with run.json labels" in err


def test_damaged_split_line(capsys, fake_run, tmp_path):
    with open(fake_run / "splits" / "val.txt", "a") as f:
        f.write("defect/x.png\tcrack\n")
    rc, err = _export(capsys, fake_run, tmp_path / "b")
    assert rc == 2 and "val.txt:7" in err and "crack" in err and "re-run training" in err


def test_unwritable_output_folder(capsys, fake_run, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the bundles folder should be")
    rc, err = _export(capsys, fake_run, blocker / "bundle")
    assert rc == 2 and "cannot write the bundle under" in err and "writable --out" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_folder(capsys, fake_run, tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        rc, err = _export(capsys, fake_run, parent / "bundle")
    finally:
        parent.chmod(0o755)
    assert rc == 2 and "cannot write the bundle under" in err


def test_existing_folder_that_is_not_a_bundle_is_never_replaced(capsys, fake_run, tmp_path):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "keep.jpg").write_bytes(b"not ours")
    rc, err = _export(capsys, fake_run, precious)
    assert rc == 2 and "is not a bundle" in err
    assert (precious / "keep.jpg").read_bytes() == b"not ours"


def test_missing_config_file(capsys, fake_run, tmp_path):
    rc, err = _export(capsys, fake_run, tmp_path / "b", "--config", str(tmp_path / "nope.toml"))
    assert rc == 2 and "config file" in err and "not found" in err
