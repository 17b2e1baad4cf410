"""train.synth: the built-in dataset is deterministic, labelled right, and its defects are real."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from train.errors import DataError
from train.synth import DEFECT_TYPES, MANIFEST, generate, main, render_part

REPO = Path(__file__).resolve().parents[1]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = _files(generate(tmp_path / "a", count=24, size=48, seed=7))
    b = _files(generate(tmp_path / "b", count=24, size=48, seed=7))
    c = _files(generate(tmp_path / "c", count=24, size=48, seed=8))
    assert len(a) == 24 and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


@pytest.mark.parametrize("labels, folders", [("binary", {"ok", "defect"}),
                                             ("types", {"ok", *DEFECT_TYPES})])
def test_class_folders_and_counts(tmp_path, labels, folders):
    out = generate(tmp_path / "d", count=50, size=40, labels=labels, ok_fraction=0.4)
    assert {p.name for p in out.iterdir() if p.is_dir()} == folders
    meta = json.loads((out / MANIFEST).read_text())
    assert meta["counts"]["ok"] == 20 and sum(meta["counts"].values()) == 50
    defect_names = {p.name.split("_")[0] for p in out.rglob("*.jpg") if p.parent.name != "ok"}
    assert defect_names == set(DEFECT_TYPES)  # every defect type is represented


def test_up_to_date_folder_is_not_rewritten_but_other_settings_replace_it(tmp_path):
    out = generate(tmp_path / "d", count=20, size=40)
    first = out / "ok" / "ok_00000.jpg"
    mtime = first.stat().st_mtime_ns
    generate(out, count=20, size=40)
    assert first.stat().st_mtime_ns == mtime
    generate(out, count=50, size=40, labels="types")
    assert not (out / "defect").exists() and len(list(out.rglob("*.jpg"))) == 50


@pytest.mark.parametrize("defect", DEFECT_TYPES)
def test_defect_changes_only_a_small_region(defect):
    good = render_part(np.random.default_rng(11), None, 96).astype(int)
    bad = render_part(np.random.default_rng(11), defect, 96, strength=1.0).astype(int)
    assert good.shape == (96, 96, 3) and good.dtype == np.int64
    changed = np.abs(good - bad).max(axis=2)
    assert changed.max() >= 40  # visible at full strength
    assert 0 < (changed > 0).mean() < 0.15  # local, not a different picture


def test_render_part_is_rgb_uint8_and_rejects_unknown_defect():
    img = render_part(np.random.default_rng(0), "pit", 64)
    assert img.dtype == np.uint8 and img.shape == (64, 64, 3)
    with pytest.raises(ValueError, match="defect must be"):
        render_part(np.random.default_rng(0), "dent", 64)


@pytest.mark.parametrize("kw, match", [({"labels": "multi"}, "labels must be"),
                                       ({"count": 5}, "count must be at least"),
                                       ({"size": 16}, "size must be"),
                                       ({"min_strength": 0}, "min_strength")])
def test_invalid_settings_are_clear_errors(tmp_path, kw, match):
    with pytest.raises(DataError, match=match):
        generate(tmp_path / "x", **kw)


def test_cli(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "s"), "--count", "50", "--size", "40", "--labels", "types"]) == 0
    assert "synthetic dataset in" in capsys.readouterr().out
    assert main(["--out", str(tmp_path / "s"), "--count", "3"]) == 2
    assert "count must be at least" in capsys.readouterr().err


def test_synth_does_not_import_tensorflow():
    code = "import sys, train, train.synth; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
