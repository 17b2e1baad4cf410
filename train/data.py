"""tf.data pipelines over the in-memory uint8 images, with augmentation applied only in training.

Augmentation runs in the input pipeline rather than inside the model, so the saved model (and
every artifact exported from it) contains no random layers at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.config import TrainConfig


def augmenter(config: TrainConfig) -> Any | None:
    """Random flips, rotation, zoom and brightness (None when disabled).

    Measured on the casting photos (lit from one side): a head trained on plain images scores 98%
    on them, 96% after random flips and 83% after random rotations. Hence flips are configurable
    and rotation is off unless asked for (the synthetic demo, lit from every side, turns it on).
    """
    if not config.augment:
        return None
    import keras

    s = config.seed
    layers = [keras.layers.RandomFlip(config.flip, seed=s)] if config.flip != "none" else []
    if config.rotation > 0:
        layers.append(keras.layers.RandomRotation(config.rotation, fill_mode="reflect", seed=s + 1))
    if config.zoom > 0:
        layers.append(keras.layers.RandomZoom(config.zoom, fill_mode="reflect", seed=s + 2))
    layers.append(keras.layers.RandomBrightness(0.1, value_range=(0, 255), seed=s + 3))
    return keras.Sequential(layers, name="augment")


def make_dataset(x: np.ndarray, y: np.ndarray, config: TrainConfig, *, training: bool,
                 aug: Any = None) -> Any:
    """Batches of (float32 RGB 0..255, label index); shuffled and augmented when ``training``."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    if training:
        ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b),
                                         num_parallel_calls=tf.data.AUTOTUNE)
    if training and aug is not None:
        ds = ds.map(lambda a, b: (tf.clip_by_value(aug(a, training=True), 0.0, 255.0), b),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
