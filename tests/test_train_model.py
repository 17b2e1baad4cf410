"""Backbones, weights resolution and fine-tuning layers: real Keras models, tiny sizes."""

from pathlib import Path

import numpy as np
import pytest

from train.backbones import list_backbones
from train.config import TrainConfig
from train.errors import TrainError, WeightsError
from train.weights import OFFLINE_ENV, WeightsChoice, resolve_weights

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_H5 = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
NONE = WeightsChoice("none", "none", None, None)


@pytest.fixture()
def empty_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    return tmp_path / "keras"


@pytest.mark.parametrize("backbone, alpha", [("mobilenet_v2", 0.35), ("mobilenet_v3_small", 0.75),
                                             ("mobilenet_v3_large", 0.75)])
def test_backbones_take_rgb_0_255_and_output_probabilities(backbone, alpha):
    import keras

    from train.model import build_classifier

    clf = build_classifier(TrainConfig(data="x", backbone=backbone, alpha=alpha, image_size=32), 3, NONE)
    assert clf.model.input_shape == (None, 32, 32, 3) and clf.model.output_shape == (None, 3)
    names = [ly.name for ly in clf.backbone.layers]
    rescale = [ly for ly in clf.backbone.layers if isinstance(ly, keras.layers.Rescaling)]
    assert len(rescale) == 1, names[:5]  # normalization inside the model, exactly once
    p = clf.model.predict(np.full((2, 32, 32, 3), 255.0, np.float32), verbose=0)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert set(list_backbones()) >= {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"}


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_the_model_pools_as_the_cached_features_it_was_chosen_on(pooling):
    """A head trained on stage 1's cached features is the saved model's head: the same pooled features."""
    from train.features import pooled_features
    from train.model import build_classifier

    clf = build_classifier(TrainConfig(data="x", alpha=0.35, image_size=32), 3, NONE, pooling=pooling)
    assert clf.pooling == pooling and clf.model.get_layer("pool") is not None
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    cached = pooled_features(clf.backbone, x, batch_size=4)[pooling]
    assert cached.shape == (4, clf.backbone.output_shape[-1])
    images = x.astype(np.float32)
    np.testing.assert_allclose(clf.features.predict(images, verbose=0), cached, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.model.predict(images, verbose=0), clf.head.predict(cached, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backbone, last_block", [("mobilenet_v2", 16), ("mobilenet_v3_small", 10)])
def test_finetune_unfreezes_only_top_blocks_and_keeps_batchnorm_frozen(backbone, last_block):
    import keras

    from train.backbones import block_index, get_backbone
    from train.model import build_classifier, freeze_backbone, unfreeze_top_blocks

    cfg = TrainConfig(data="x", backbone=backbone, alpha=0.75, image_size=32, finetune_blocks=2)
    clf = build_classifier(cfg, 2, NONE)
    freeze_backbone(clf)
    assert not clf.backbone.trainable_weights
    assert unfreeze_top_blocks(clf, cfg) > 0
    spec = get_backbone(backbone)
    for layer in clf.backbone.layers:
        b = block_index(spec, layer.name)
        if isinstance(layer, keras.layers.BatchNormalization):
            assert not layer.trainable
        elif b is not None and b < last_block - 1 and layer.weights:
            assert not layer.trainable, layer.name
    trainable_blocks = {block_index(spec, w.path.split("/")[0]) for w in clf.backbone.trainable_weights}
    assert trainable_blocks - {None} == {last_block - 1, last_block}


def test_auto_without_cache_falls_back_loudly(empty_keras_home, capsys):
    choice = resolve_weights(TrainConfig(data="x", weights="auto"))
    assert choice.used == "none" and not choice.pretrained
    err = capsys.readouterr().err
    assert "FROM SCRATCH" in err and "--weights PATH" in err and "KERAS_HOME" in err


def test_auto_uses_the_keras_cache_when_the_file_is_there(empty_keras_home):
    cfg = TrainConfig(data="x", weights="auto", alpha=1.0, image_size=160)
    f = empty_keras_home / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"stand-in: only its presence is checked here")
    choice = resolve_weights(cfg)
    assert (choice.used, choice.path) == ("imagenet", str(f)) and len(choice.sha256) == 64


def test_imagenet_offline_is_a_clear_error(empty_keras_home):
    with pytest.raises(WeightsError) as err:
        resolve_weights(TrainConfig(data="x", weights="imagenet", alpha=0.35, image_size=96))
    msg = str(err.value)
    assert "--weights PATH" in msg and "KERAS_HOME" in msg and "--weights none" in msg
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5" in msg


def test_weights_path_is_checked_and_recorded(tmp_path):
    with pytest.raises(WeightsError, match="weights file not found"):
        resolve_weights(TrainConfig(data="x", weights=str(tmp_path / "no.h5")))
    f = tmp_path / "w.h5"
    f.write_bytes(b"123")
    choice = resolve_weights(TrainConfig(data="x", weights=str(f)))
    assert choice.to_dict() == {"requested": str(f), "used": "path", "path": str(f.resolve()),
                                "sha256": "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"}


@pytest.mark.skipif(not SHARED_H5.is_file(), reason=f"shared pretrained weights not found at {SHARED_H5}")
def test_shared_h5_loads_at_96px_and_a_wrong_width_is_a_clear_error():
    from train.model import build_classifier

    cfg = TrainConfig(data="x", weights=str(SHARED_H5), alpha=1.0, image_size=96)
    clf = build_classifier(cfg, 2, resolve_weights(cfg))
    random = build_classifier(cfg, 2, NONE)
    w, r = clf.backbone.get_layer("Conv1").kernel.numpy(), random.backbone.get_layer("Conv1").kernel.numpy()
    assert w.shape == r.shape and not np.allclose(w, r)
    bad = TrainConfig(data="x", weights=str(SHARED_H5), alpha=0.35, image_size=96)
    with pytest.raises(WeightsError, match="do not fit"):
        build_classifier(bad, 2, resolve_weights(bad))


def test_strategies(monkeypatch):
    from train.strategy import get_strategy, is_chief

    assert get_strategy("default").num_replicas_in_sync == 1
    assert get_strategy("mirrored").num_replicas_in_sync >= 1
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TrainError, match="TF_CONFIG"):
        get_strategy("multi-worker")
    assert is_chief()
    cluster = '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}'
    monkeypatch.setenv("TF_CONFIG", cluster)
    assert not is_chief()
