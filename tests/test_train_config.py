"""train.config and the CLI: defaults < config file < flags; bad values are clear errors."""

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from train.__main__ import build_parser
from train.config import TrainConfig, load_config_file, resolve
from train.errors import TrainError

REPO = Path(__file__).resolve().parents[1]


def test_precedence_defaults_file_flags(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[train]\nalpha = 0.35\nimage-size = 96\nepochs_head = 3\n')
    c = resolve({"image_size": 64, "backbone": None}, f)
    assert (c.alpha, c.image_size, c.epochs_head, c.backbone) == (0.35, 64, 3, TrainConfig.backbone)


def test_json_config_and_unknown_key_hint(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"batch_size": 8}))
    assert load_config_file(f) == {"batch_size": 8}
    f.write_text(json.dumps({"batch_sise": 8}))
    with pytest.raises(TrainError, match="did you mean batch_size"):
        load_config_file(f)


@pytest.mark.parametrize("values, match", [({"backbone": "resnet50"}, "backbone must be one of"),
                                           ({"image_size": 16}, "image_size must be >= 32"),
                                           ({"epochs_head": "ten"}, "should be of type int"),
                                           ({"val_fraction": 0.5, "test_fraction": 0.5}, "sum < 0.9"),
                                           ({"finetune_evidence": -1.0}, "finetune_evidence must be >= 0")])
def test_invalid_values(values, match):
    with pytest.raises(TrainError, match=match):
        resolve(values)


def test_every_field_has_a_flag():
    help_text = build_parser().format_help()
    for f in fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in help_text
    assert "multi-worker" in help_text and "TF_CONFIG" in help_text


def test_config_hash_ignores_where_outputs_go():
    a, b = TrainConfig(data="d", name="x", out="o1"), TrainConfig(data="d", name="y", out="o2")
    assert a.hash() == b.hash() != TrainConfig(data="d", seed=1).hash()


def test_shipped_config_files_are_valid():
    demo = resolve({"data": "data/synthetic"}, REPO / "train" / "configs" / "demo.toml")
    assert demo.weights == "none"  # the demo runs offline on a fresh machine
    casting = resolve(None, REPO / "train" / "configs" / "casting.toml")
    assert casting.data == "../shared/data/casting" and casting.weights.endswith("_1.0_224_no_top.h5")


@pytest.mark.parametrize("args, match", [(["--data", "/nonexistent/photos"], "dataset folder not found"),
                                         ([], "no dataset"),
                                         (["--data", ".", "--weights", "/no/such.h5"],
                                          "weights file not found")])
def test_cli_errors_exit_2_without_traceback(args, match, tmp_path):
    out = tmp_path / "runs"
    r = subprocess.run([sys.executable, "-m", "train", "--out", str(out), *args], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 2 and match in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() or not any(out.iterdir())  # no empty run folder left behind


def test_resize_and_roi_become_the_input_contract(tmp_path):
    from runtime.contract import InputContract
    from train.pipeline import input_contract

    cfg = resolve({"image_size": 96, "resize": "letterbox", "roi": "0.1,0,0.9,1"})
    assert input_contract(cfg) == InputContract(96, 96, roi=(0.1, 0.0, 0.9, 1.0), resize="letterbox")
    assert input_contract(resolve({})).roi is None
    (tmp_path / "c.toml").write_text('[train]\nresize = "crop"\nroi = "0,0,0.5,0.5"\n')
    assert input_contract(resolve(config_file=tmp_path / "c.toml")).resize == "crop"
    with pytest.raises(TrainError, match="x0,y0,x1,y1"):
        resolve({"roi": "0.5"})
    with pytest.raises(TrainError, match="resize must be one of"):
        resolve({"resize": "squash"})


def test_rare_classes_get_more_augmented_views_for_the_head():
    import numpy as np

    from train.stages import RARE_CLASS_PHOTOS, views_for

    common = np.repeat([0, 1], RARE_CLASS_PHOTOS)
    rare = np.concatenate([common, np.full(RARE_CLASS_PHOTOS - 1, 2)])
    config = TrainConfig()
    assert (config.head_views, config.rare_class_views) == (2, 4)
    assert views_for(config, common) == 2 and views_for(config, rare) == 4
    assert views_for(TrainConfig(rare_class_views=0), rare) == 2  # off: head_views everywhere
    assert views_for(TrainConfig(head_views=0), rare) == 0  # no views asked for: none added
    assert views_for(TrainConfig(head_views=8), rare) == 8  # never fewer than asked for
