"""The hard-variant builder (``python -m train.hardset``) on small generated photo sets."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from train.hardset import ASPECTS, build, defect_box, salience


def _steel(rng: np.random.Generator, size: int = 200) -> np.ndarray:
    """Grey texture under a lighting gradient, as a steel-strip photo."""
    grad = np.linspace(70, 150, size, dtype=np.float32)[None, :]
    grey = np.clip(grad + rng.normal(0, 8, (size, size)), 0, 255)
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)


def _scratch(rng: np.random.Generator, x: int) -> np.ndarray:
    image = _steel(rng)
    cv2.line(image, (x, 0), (x, 199), (235, 235, 235), 3)
    return image


def _patch(rng: np.random.Generator, centre: tuple[int, int]) -> np.ndarray:
    image = _steel(rng)
    cv2.circle(image, centre, 22, (25, 25, 25), -1)
    return image


def test_salience_marks_the_defect_and_not_the_texture_or_the_lighting():
    rng = np.random.default_rng(0)
    s = salience(_scratch(rng, 20))
    assert s[:, 18:23].mean() > 10 * max(s[:, 60:].mean(), 1e-3)
    assert salience(_steel(rng)).mean() < 1.0  # texture under a gradient alone hardly stands out


@pytest.mark.parametrize("seed", range(8))
def test_a_defect_crop_keeps_a_scratch_near_the_edge_of_the_photo(seed):
    rng = np.random.default_rng(seed)
    image = _scratch(rng, 20)
    for aspect in ASPECTS.values():
        (left, top, right, bottom), kept = defect_box(rng, image, aspect)
        assert left <= 19 and right >= 21, (aspect, left, right)
        assert 0 < kept <= 1.0


@pytest.mark.parametrize("seed", range(8))
def test_a_defect_crop_keeps_a_dark_patch_in_a_corner(seed):
    rng = np.random.default_rng(seed)
    image = _patch(rng, (170, 30))
    for aspect in ASPECTS.values():
        (left, top, right, bottom), _ = defect_box(rng, image, aspect)
        assert left <= 170 < right and top <= 30 < bottom, (aspect, left, top, right, bottom)


def _write_set(root, rng) -> None:
    for name, count in (("good", 12), ("scratch", 9), ("patch", 9)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            if name == "good":
                image = _steel(rng)
            elif name == "scratch":
                image = _scratch(rng, int(rng.integers(10, 190)))
            else:
                image = _patch(rng, (int(rng.integers(30, 170)), int(rng.integers(30, 170))))
            cv2.imwrite(str(root / name / f"{name}_{i}.jpg"), image)


def test_the_variant_keeps_every_good_photo_few_defects_and_elongated_frames(tmp_path):
    _write_set(tmp_path / "src", np.random.default_rng(1))
    record = build(tmp_path / "src", tmp_path / "out", "good", lo=3, hi=5, holdout=2, seed=0)
    out = tmp_path / "out"
    assert len(list((out / "train" / "good").glob("*.png"))) == 12
    for name in ("scratch", "patch"):
        assert 3 <= len(list((out / "train" / name).glob("*.png"))) <= 5
        assert len(list((out / "holdout" / name).glob("*.png"))) == 2
    for photo in record["photos"]:
        h, w = cv2.imread(str(out / photo["file"])).shape[:2]
        aw, ah = ASPECTS[photo["aspect"]]
        assert abs(w / h - aw / ah) < 0.1 * aw / ah, photo
        assert ("salience_kept" in photo) == (not photo["file"].split("/")[1] == "good")
    assert json.loads((out / "hardset.json").read_text()) == record
    assert not (tmp_path / "out.partial").exists()
    again = build(tmp_path / "src", tmp_path / "again", "good", lo=3, hi=5, holdout=2, seed=0)
    assert [p["box"] for p in again["photos"]] == [p["box"] for p in record["photos"]]  # deterministic


def test_a_good_class_that_is_not_there_is_refused_with_the_classes_found(tmp_path):
    _write_set(tmp_path / "src", np.random.default_rng(2))
    with pytest.raises(SystemExit, match=r"no class folder 'ok'.*'good', 'patch', 'scratch'.*--good"):
        build(tmp_path / "src", tmp_path / "out", "ok")
