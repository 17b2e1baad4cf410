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


def oversample(y: np.ndarray, seed: int) -> np.ndarray:
    """Row indices that repeat each class's rows up to the largest class's count (``--class-weights
    oversample``): every row at least once, whole repeats first, then a seeded draw without
    replacement for the rest, in row order."""
    counts = np.bincount(y)
    rng = np.random.default_rng(seed)
    out = []
    for c in np.flatnonzero(counts):
        rows = np.flatnonzero(y == c)
        reps, extra = divmod(int(counts.max()), len(rows))
        out.append(np.concatenate([np.tile(rows, reps), rng.choice(rows, extra, replace=False)]))
    return np.sort(np.concatenate(out))


def training_rows(y: np.ndarray, config: TrainConfig) -> np.ndarray | None:
    """The rows one training epoch visits: None (each once) unless oversampling balances the classes."""
    return oversample(y, config.seed) if config.class_weights == "oversample" else None


def make_dataset(x: np.ndarray, y: np.ndarray, config: TrainConfig, *, training: bool,
                 aug: Any = None, rows: np.ndarray | None = None) -> Any:
    """Batches of (float32 RGB 0..255, label index); shuffled and augmented when ``training``.

    ``rows`` (indices into ``x``, repeats allowed) makes an epoch visit those rows instead of each
    once; the indices are shuffled and the photos gathered after, so repeats are not copied in memory.
    """
    import tensorflow as tf

    if rows is None:
        ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
        if training:
            ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    else:
        xs, ys = tf.constant(x), tf.constant(y.astype(np.int32))
        ds = tf.data.Dataset.from_tensor_slices(rows.astype(np.int64))
        if training:
            ds = ds.shuffle(len(rows), seed=config.seed, reshuffle_each_iteration=True)
        ds = ds.map(lambda i: (tf.gather(xs, i), tf.gather(ys, i)))
    ds = ds.batch(config.batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b),
                                         num_parallel_calls=tf.data.AUTOTUNE)
    if training and aug is not None:
        ds = ds.map(lambda a, b: (tf.clip_by_value(aug(a, training=True), 0.0, 255.0), b),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
