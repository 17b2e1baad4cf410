"""train.intake: bad files are skipped and reported, layouts fail clearly, splits are stratified,
duplicate-aware, deterministic and reused. Real files, real decoding, no TensorFlow."""

import shutil
import struct
from collections import Counter

import cv2
import numpy as np
import pytest

from runtime.contract import InputContract
from runtime.image_io import read_image
from runtime.preprocess import prepare_rgb
from train.config import TrainConfig
from train.errors import DataError
from train.intake import prepare_dataset
from train.intake.scan import detect_ok_label, is_ok_name
from train.intake.split import read_split_lists
from train.synth import generate

C = InputContract(32, 32)


def _cfg(data, **kw) -> TrainConfig:
    return TrainConfig(data=str(data), verbose=False, **kw)


@pytest.fixture()
def clean(tmp_path):
    """A small valid dataset: 20 ok + 20 defect synthetic parts (48 px)."""
    return generate(tmp_path / "data", count=40, size=48, seed=3)


def _exif_jpeg(bgr: np.ndarray, orientation: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    app1 = b"Exif\x00\x00" + tiff
    data = buf.tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def _seed_bad_and_odd_files(root):
    """The factory-floor mix: 4 unusable files and 4 unusual but valid ones (all in ok/)."""
    ok = root / "ok"
    real = (ok / "ok_00000.jpg").read_bytes()
    (ok / "corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(3000))
    (ok / "truncated.jpg").write_bytes(real[: len(real) // 2])
    (ok / "empty.png").write_bytes(b"")
    (ok / "notes.txt").write_text("operator notes")
    bgr = cv2.cvtColor(read_image(ok / "ok_00001.jpg"), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(ok / "grey.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(ok / "rgba.png"), np.dstack([bgr, np.full(bgr.shape[:2], 128, np.uint8)]))
    cv2.imwrite(str(ok / "deep16.png"), bgr.astype(np.uint16) * 257)
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :20] = 255
    (ok / "exif6.jpg").write_bytes(_exif_jpeg(wide, 6))  # displays as 40 tall x 20 wide
    return bgr


def test_bad_files_are_skipped_and_each_reported(clean, tmp_path, capsys):
    bgr = _seed_bad_and_odd_files(clean)
    ds = prepare_dataset(_cfg(clean), C, tmp_path / "run")
    skipped = {s["path"]: s["reason"] for s in ds.report["skipped"]}
    assert set(skipped) == {"ok/corrupt.jpg", "ok/truncated.jpg", "ok/empty.png", "ok/notes.txt"}
    assert "truncated" in skipped["ok/truncated.jpg"] and "empty" in skipped["ok/empty.png"]
    assert "not an image" in skipped["ok/notes.txt"] and "decodable" in skipped["ok/corrupt.jpg"]
    md = (tmp_path / "run" / "data_report.md").read_text()
    assert all(p in md for p in skipped)
    err = capsys.readouterr().err
    assert all(p in err for p in skipped)  # said out loud, not only written to a file
    # The unusual but valid files are used, converted to RGB correctly.
    px = dict(zip(ds.paths, ds.images, strict=True))
    want = prepare_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), C)
    np.testing.assert_array_equal(px["ok/deep16.png"], want)
    np.testing.assert_array_equal(px["ok/rgba.png"], want)
    grey = px["ok/grey.png"]
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    exif = px["ok/exif6.jpg"]
    assert exif[:14].mean() > 200 and exif[18:].mean() < 50  # rotated upright: white half on top
    assert ds.report["classes"]["ok"] == {"files": 27, "used": 24}  # notes.txt is no image file


@pytest.mark.parametrize("case, match", [
    ("missing", "dataset folder not found"),
    ("file", "not a folder"),
    ("loose", "lie directly in"),
    ("one_class", "at least 2 class folders"),
    ("no_class", "at least 2 class folders"),
    ("small", "too few images to split"),
    ("small_after_skips", "'defect': 5 usable of 7 files"),
])
def test_layout_errors_say_what_and_how_to_fix(clean, tmp_path, case, match):
    data = clean
    if case == "missing":
        data = tmp_path / "nope"
    elif case == "file":
        data = clean / "ok" / "ok_00000.jpg"
    elif case == "loose":
        shutil.copy(clean / "ok" / "ok_00000.jpg", clean / "stray.jpg")
    elif case == "one_class":
        shutil.rmtree(clean / "defect")
    elif case == "no_class":
        data = tmp_path / "empty"
        (data / "ok").mkdir(parents=True)
    else:
        for p in sorted((clean / "defect").glob("*.jpg"))[5:]:
            p.unlink()
        if case == "small_after_skips":
            (clean / "defect" / "bad1.jpg").write_bytes(b"junk")
            (clean / "defect" / "bad2.png").write_bytes(b"")
    with pytest.raises(DataError, match=match) as err:
        prepare_dataset(_cfg(data), C, tmp_path / "run")
    assert any(w in str(err.value) for w in ("expected", "need", "add", "move", "check"))


@pytest.mark.parametrize("name, ok", [("ok", True), ("ok_front", True), ("Good-Parts", True), ("PASS", True),
                                      ("normal", True), ("no_defect", True), ("not_ok", False),
                                      ("def_front", False), ("defect", False), ("bad", False),
                                      ("MT_Free", True), ("crack-free", True), ("qualified", True),
                                      ("unqualified", False), ("non_conforming", False)])
def test_ok_label_rule(name, ok):
    assert is_ok_name(name) is ok


def test_ok_label_detection_and_override():
    assert detect_ok_label(["def_front", "ok_front"]) == "ok_front"
    assert detect_ok_label(["a", "b"], "b") == "b"
    with pytest.raises(DataError, match="did you mean 'ok_front'"):
        detect_ok_label(["def_front", "ok_front"], "ok_frnt")
    with pytest.raises(DataError, match="--ok-label"):
        detect_ok_label(["cats", "dogs"])
    with pytest.raises(DataError, match="several classes"):
        detect_ok_label(["good", "ok", "scratch"])


def test_imbalance_warns_and_weights_the_small_class(tmp_path, capsys):
    data = generate(tmp_path / "d", count=60, size=40, ok_fraction=0.85)
    ds = prepare_dataset(_cfg(data), C, tmp_path / "run")
    assert "class imbalance" in ds.report["imbalance"]["warning"]
    assert "class imbalance" in capsys.readouterr().err
    w = ds.report["class_weights"]
    assert w["defect"] > 2 * w["ok"]
    assert ds.class_weight == {0: w["defect"], 1: w["ok"]}  # index order = sorted labels


def test_duplicates_stay_together_and_conflicts_are_reported(clean, tmp_path):
    src = clean / "ok" / "ok_00002.jpg"
    shutil.copy(src, clean / "ok" / "copy.jpg")  # exact
    img = cv2.imread(str(src))
    cv2.imwrite(str(clean / "ok" / "resaved.png"), img)  # near: other format and bytes
    cv2.imwrite(str(clean / "ok" / "bigger.png"), cv2.resize(img, (64, 64), interpolation=cv2.INTER_CUBIC))
    shutil.copy(clean / "ok" / "ok_00003.jpg", clean / "defect" / "mislabelled.jpg")
    ds = prepare_dataset(_cfg(clean), C, tmp_path / "run")
    split = dict(zip(ds.paths, ds.split_of, strict=True))
    groups = ds.report["duplicates"]["groups"]
    trio = next(g for g in groups if "ok/copy.jpg" in g["paths"])
    assert set(trio["paths"]) == {"ok/ok_00002.jpg", "ok/copy.jpg", "ok/resaved.png", "ok/bigger.png"}
    assert trio["kind"] == "near"
    assert len({split[p] for p in trio["paths"]}) == 1
    conflicts = ds.report["duplicates"]["label_conflicts"]
    assert [sorted(c["paths"]) for c in conflicts] == [["defect/mislabelled.jpg", "ok/ok_00003.jpg"]]
    assert len(groups) == 2  # no false duplicates among 40 distinct synthetic parts


def test_split_is_stratified_and_deterministic(tmp_path):
    data = generate(tmp_path / "d", count=100, size=40)
    a = prepare_dataset(_cfg(data), C, tmp_path / "a")
    b = prepare_dataset(_cfg(data), C, tmp_path / "b")
    c = prepare_dataset(_cfg(data, seed=1), C, tmp_path / "c")
    assert read_split_lists(tmp_path / "a" / "splits") == read_split_lists(tmp_path / "b" / "splits")
    assert read_split_lists(tmp_path / "a" / "splits") != read_split_lists(tmp_path / "c" / "splits")
    for s, n in (("train", 35), ("val", 8), ("test", 7)):  # 50 per class: 70/15/15 %
        assert a.report["splits"][s] == {"ok": n, "defect": n} or abs(a.report["splits"][s]["ok"] - n) <= 1
    line = (tmp_path / "a" / "splits" / "test.txt").read_text().splitlines()[0]
    path, label = line.split("\t")
    assert (data / path).is_file() and path.split("/")[0] == label
    assert b.fingerprint == a.fingerprint and c.fingerprint == a.fingerprint


def test_split_lists_are_reused_on_rerun_and_from_another_run(tmp_path):
    data = generate(tmp_path / "d", count=60, size=40)
    run = tmp_path / "run"
    prepare_dataset(_cfg(data), C, run)
    first = read_split_lists(run / "splits")
    gone = sorted(first)[0]
    (data / gone).unlink()
    new = generate(tmp_path / "more", count=20, size=40, seed=99)
    for p in new.rglob("*.jpg"):
        shutil.copy(p, data / p.parent.name / f"new_{p.name}")
    ds = prepare_dataset(_cfg(data, seed=5), C, run)  # another seed: old files must not move
    again = read_split_lists(run / "splits")
    assert all(again[p] == s for p, s in first.items() if p != gone)
    assert gone not in again and ds.report["previous_split"]["missing"] == [gone]
    assert sum(p.startswith(("ok/new_", "defect/new_")) for p in again) == 20
    other = prepare_dataset(_cfg(data, seed=7, splits_from=str(run)), C, tmp_path / "other")
    assert read_split_lists(tmp_path / "other" / "splits") == again
    assert other.report["previous_split"]["source"]
    with pytest.raises(DataError, match="no split lists"):
        prepare_dataset(_cfg(data, splits_from=str(tmp_path / "nothing")), C, tmp_path / "x")


def _mask_like(bgr: np.ndarray, levels: tuple[int, ...]) -> np.ndarray:
    """A grey mask the size of ``bgr``: a blob of each further level on ``levels[0]`` (one level: blank)."""
    m = np.full(bgr.shape[:2], levels[0], np.uint8)
    h, w = m.shape
    for i, level in enumerate(levels[1:]):
        m[h // 3: h // 2, w // 8 * (2 * i + 1): w // 8 * (2 * i + 2)] = level
    return m


def test_masks_beside_the_photos_are_skipped_and_photos_never_are(clean, tmp_path, capsys):
    """Magnetic Tile's layout: <class>/Imgs/x.jpg with its mask x.png beside it (black for a good part).

    Only a file both named and made like a mask is skipped: a twin PNG that is a photo, and a
    two-level PNG no name marks, are used."""
    photos = {}
    for cls in ("ok", "defect"):
        imgs = clean / cls / "Imgs"
        imgs.mkdir()
        for p in sorted((clean / cls).glob("*.jpg"))[:11]:
            p.rename(imgs / p.name)
            bgr = cv2.cvtColor(read_image(imgs / p.name), cv2.COLOR_RGB2BGR)
            levels = (0,) if cls == "ok" else (0, 255)
            cv2.imwrite(str(imgs / (p.stem + ".png")), _mask_like(bgr, levels))
            photos[cls] = bgr
    (clean / "defect" / "Imgs" / "blobs_mask.png").write_bytes(cv2.imencode(".png", _mask_like(
        photos["defect"], (0, 1, 2)))[1].tobytes())  # a label-index mask, named so
    cv2.imwrite(str(clean / "ok" / "twin.jpg"), photos["ok"])
    cv2.imwrite(str(clean / "ok" / "twin.png"), photos["ok"])  # a photo in two formats: both photos
    cv2.imwrite(str(clean / "defect" / "stencil.png"), _mask_like(photos["defect"], (0, 255)))
    cv2.imwrite(str(clean / "defect" / "label_print.png"), _mask_like(photos["defect"], (0, 255)))  # a part
    ds = prepare_dataset(_cfg(clean), C, tmp_path / "run")
    skipped = {s["path"]: s["reason"] for s in ds.report["skipped"]}
    masks = {f"{c}/Imgs/{p.stem}.png" for c in ("ok", "defect") for p in (clean / c / "Imgs").glob("*.jpg")}
    assert set(skipped) == masks | {"defect/Imgs/blobs_mask.png"}
    assert "shares its name with ok/Imgs/" in skipped[sorted(m for m in masks if m.startswith("ok"))[0]]
    assert "1 grey level)" in skipped[sorted(masks)[-1]]
    assert "3 grey levels" in skipped["defect/Imgs/blobs_mask.png"]
    assert all("segmentation mask" in r and "move them out" in r for r in skipped.values())
    assert {"ok/twin.jpg", "ok/twin.png", "defect/stencil.png", "defect/label_print.png"} <= set(ds.paths)
    assert sum(p.endswith(".jpg") for p in ds.paths) == 40 + 1  # every photo, the twin's JPEG too
    err = capsys.readouterr().err
    assert "more files skipped" in err and "data_report.md" in err  # 23 named one by one would flood it
    md = (tmp_path / "run" / "data_report.md").read_text()
    assert all(p in md for p in skipped)


def test_a_set_that_comes_split_keeps_its_test_folder_and_carves_val_from_train(tmp_path):
    """Kaggle's casting layout: DATA/{train,test}/<class>/. Its test photos are the test split, no
    training photo lands there, and val is carved from train/ per class (test's copy of a training
    photo takes that photo with it: the safe direction)."""
    data = tmp_path / "casting_data"
    generate(data / "train", count=40, size=48, seed=3)
    generate(data / "test", count=20, size=48, seed=4)
    first = sorted((data / "train" / "defect").iterdir())[0]
    shutil.copy(first, data / "test" / "defect" / f"copy_of_train{first.suffix}")
    ds = prepare_dataset(_cfg(data), C, tmp_path / "run")
    assert ds.labels == ["defect", "ok"] and ds.ok_label == "ok"
    split = dict(zip(ds.paths, ds.split_of, strict=True))
    in_test = {p for p, s in split.items() if s == "test"}
    assert in_test == {p for p in split if p.startswith("test/")} | {f"train/defect/{first.name}"}
    val = Counter(ds.y[ds.split_of == "val"])
    assert sorted(val.values()) == [3, 3]  # 15% of each class's 20 training photos
    assert ds.report["given_split"] == ("by its folders (train, test); "
                                        "val (15% of each class) carved from train")
    assert "The set comes split" in (tmp_path / "run" / "data_report.md").read_text()


def test_a_set_that_comes_split_without_a_class_in_test_says_how_to_fix_it(tmp_path):
    data = tmp_path / "d"
    generate(data / "train", count=40, size=48, seed=3)
    generate(data / "val", count=20, size=48, seed=4)
    shutil.rmtree(data / "val" / "defect")
    with pytest.raises(DataError, match="no image of it in the val split.*comes split by its folders"):
        prepare_dataset(_cfg(data), C, tmp_path / "run")
