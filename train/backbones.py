"""Backbone registry: each entry builds a headless Keras application that takes RGB 0..255.

Normalization lives inside the model (a ``Rescaling`` layer for MobileNetV2, the built-in
preprocessing of MobileNetV3), so every exported artifact takes camera pixels as they are.
Registered with a decorator, listed with :func:`list_backbones` (the timm pattern).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from train.errors import TrainError


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone and how Keras names its ImageNet weight file."""

    name: str
    build: Callable  # (input_tensor, alpha, weights) -> headless keras Model
    cache_file: Callable[[float, int], str]  # (alpha, image_size) -> file name in $KERAS_HOME/models
    block_pattern: str  # regex whose group 1 numbers the blocks in layer names


_REGISTRY: dict[str, BackboneSpec] = {}


def register(name: str, cache_file: Callable[[float, int], str], block_pattern: str):
    """Decorator: register ``fn(input_tensor, alpha, weights)`` as backbone ``name``."""
    def deco(fn: Callable) -> Callable:
        _REGISTRY[name] = BackboneSpec(name, fn, cache_file, block_pattern)
        return fn
    return deco


def list_backbones() -> list[str]:
    """Names of the registered backbones."""
    return sorted(_REGISTRY)


def get_backbone(name: str) -> BackboneSpec:
    """Look a backbone up by name; unknown names are an error with the list."""
    if name not in _REGISTRY:
        raise TrainError(f"unknown backbone {name!r}; choose one of {list_backbones()}")
    return _REGISTRY[name]


def _v2_rows(size: int) -> int:
    # Keras ships V2 ImageNet weights for these sizes and falls back to 224 otherwise.
    return size if size in (96, 128, 160, 192, 224) else 224


def _v2_file(alpha: float, size: int) -> str:
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{_v2_rows(size)}_no_top.h5"


@register("mobilenet_v2", _v2_file, r"^block_(\d+)_")
def _mobilenet_v2(x, alpha: float, weights):
    import keras

    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_minus1_1")(x)  # V2 expects [-1, 1]
    return keras.applications.MobileNetV2(input_tensor=scaled, include_top=False, alpha=alpha,
                                          weights=weights)


def _v3_file(kind: str) -> Callable[[float, int], str]:
    return lambda a, s: f"weights_mobilenet_v3_{kind}_224_{float(a)}_float_no_top_v2.h5"


@register("mobilenet_v3_small", _v3_file("small"), r"^expanded_conv_(\d+)_")
def _mobilenet_v3_small(x, alpha: float, weights):
    import keras

    return keras.applications.MobileNetV3Small(input_tensor=x, include_top=False, alpha=alpha,
                                               weights=weights, include_preprocessing=True)  # takes 0..255


@register("mobilenet_v3_large", _v3_file("large"), r"^expanded_conv_(\d+)_")
def _mobilenet_v3_large(x, alpha: float, weights):
    import keras

    return keras.applications.MobileNetV3Large(input_tensor=x, include_top=False, alpha=alpha,
                                               weights=weights, include_preprocessing=True)


def block_index(spec: BackboneSpec, layer_name: str) -> int | None:
    """Block number of a layer (None for the stem and the final conv)."""
    m = re.match(spec.block_pattern, layer_name)
    return int(m.group(1)) if m else None
