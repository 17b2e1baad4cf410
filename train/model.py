"""The classifier: backbone (normalization inside) -> global pooling -> dropout -> softmax.

Built from layers shared by three Keras models: ``model`` (image -> probabilities, the one that
is saved), ``features`` (image -> pooled backbone features, for caching) and ``head``
(features -> probabilities, trained on the cached features). Training the head therefore trains
the saved model's classifier, with no weight copying. Only built-in layers: ``model.keras``
loads with plain ``keras.models.load_model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from train.backbones import block_index, get_backbone
from train.config import TrainConfig
from train.weights import WeightsChoice, load_failure

# Keras's MobileNets use BatchNorm momentum 0.999, tuned for ImageNet's millions of steps. From
# scratch on a few hundred steps the moving statistics would still be near their initial values
# at the end, and validation (inference mode) would see a broken net; 0.9 tracks within ~30 steps.
SCRATCH_BN_MOMENTUM = 0.9


@dataclass
class Classifier:
    """The saved model and its two views that share its layers."""

    model: Any  # keras.Model: float32 RGB 0..255 (N, H, W, 3) -> softmax (N, classes)
    backbone: Any
    features: Any  # image -> pooled features
    head: Any  # pooled features -> softmax
    pooling: str = "avg"  # the global pooling between backbone and head (avg | max)


def build_classifier(config: TrainConfig, num_classes: int, weights: WeightsChoice,
                     pooling: str | None = None) -> Classifier:
    """Build the model for ``config`` with ``weights`` (raises WeightsError when they do not load).

    ``pooling`` overrides ``config.pooling`` (needed when it is ``auto``: average until the head's
    recipe search decides).
    """
    import keras

    spec = get_backbone(config.backbone)
    shape = (config.image_size, config.image_size, 3)
    try:
        backbone = spec.build(keras.Input(shape, name="rgb_0_255"), config.alpha, weights.keras_arg)
    except Exception as exc:  # Keras raises bare Exception/ValueError for download and shape problems
        if weights.used == "none":
            raise
        raise load_failure(config, weights, exc) from exc
    clf = assemble(config, backbone, num_classes, pooling)
    if not weights.pretrained:
        prepare_for_scratch(backbone)
    return clf


def assemble(config: TrainConfig, backbone, num_classes: int, pooling: str | None = None) -> Classifier:
    """The three views (model, features, head) around ``backbone``, with a new pooling and head."""
    import keras

    shape = (config.image_size, config.image_size, 3)
    pooling = pooling or (config.pooling if config.pooling != "auto" else "avg")
    pools = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D}
    pool = pools[pooling](name="pool")
    drop, dense = _head_layers(num_classes, config.dropout)
    image = keras.Input(shape, name="image")
    pooled = pool(backbone(image))
    model = keras.Model(image, dense(drop(pooled)), name=f"{config.backbone}_classifier")
    features = keras.Model(image, pooled, name="features")
    f_in = keras.Input((pooled.shape[-1],), name="pooled_features")
    head = keras.Model(f_in, dense(drop(f_in)), name="head")
    return Classifier(model=model, backbone=backbone, features=features, head=head, pooling=pooling)


def _head_layers(num_classes: int, dropout: float):
    import keras

    return (keras.layers.Dropout(dropout, name="dropout"),
            keras.layers.Dense(num_classes, activation="softmax", name="probs"))


def standalone_head(dim: int, num_classes: int, dropout: float):
    """A head like the model's (dropout -> softmax) on ``dim`` pooled features, sharing nothing."""
    import keras

    drop, dense = _head_layers(num_classes, dropout)
    f_in = keras.Input((dim,), name="pooled_features")
    return keras.Model(f_in, dense(drop(f_in)), name="candidate_head")


def prepare_for_scratch(backbone) -> None:
    """Random init tuned for training from scratch: faster BatchNorm statistics, zero-init residuals.

    Each residual block's last BatchNorm starts with gamma = 0 (Goyal et al., 2017), so the untrained
    net behaves like a shallow one and gradients reach the stem; on a few thousand images and a
    CPU budget of minutes this is what makes a from-scratch MobileNet learn at all.
    """
    import keras

    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = SCRATCH_BN_MOMENTUM
        if isinstance(layer, keras.layers.Add):
            branch = layer._inbound_nodes[0].input_tensors[-1]._keras_history.operation
            if isinstance(branch, keras.layers.BatchNormalization) and branch.gamma is not None:
                branch.gamma.assign(keras.ops.zeros_like(branch.gamma))


def freeze_backbone(clf: Classifier) -> None:
    """Stage 1: nothing in the backbone trains."""
    clf.backbone.trainable = False


def unfreeze_top_blocks(clf: Classifier, config: TrainConfig) -> int:
    """Stage 2: unfreeze the top ``finetune_blocks`` blocks (plus the final conv); BatchNorm stays frozen.

    A frozen BatchNormalization layer runs in inference mode in Keras 3, so its statistics, learnt
    on ImageNet, are not wrecked by small fine-tuning batches. Returns the number of trainable layers.
    """
    import keras

    spec = get_backbone(config.backbone)
    layers = clf.backbone.layers
    blocks = [b for b in (block_index(spec, ly.name) for ly in layers) if b is not None]
    first_block = max(blocks) - config.finetune_blocks + 1
    start = next((i for i, ly in enumerate(layers)
                  if (b := block_index(spec, ly.name)) is not None and b >= first_block), len(layers))
    if config.finetune_blocks == 0:
        start = len(layers)
    clf.backbone.trainable = True
    n = 0
    for i, layer in enumerate(layers):
        layer.trainable = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
        n += bool(layer.trainable and layer.weights)
    return n
