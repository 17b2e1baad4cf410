"""Backbone features of the training images, computed once for stage 1 (the frozen backbone).

Both global poolings come from the same forward pass, so the head's recipe search can compare them
for free; augmented views of the training images are added so that the head has seen what
augmentation (and later the line) shows it, not only the few original photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POOLINGS = ("avg", "max")


@dataclass
class CachedFeatures:
    """Pooled features ``{pooling: (N, C) float32}``, the label of each row and the photo it came from.

    The first ``photos`` rows are the photos themselves, in order; augmented views of them follow.
    """

    pooled: dict[str, np.ndarray]
    y: np.ndarray
    photo: np.ndarray  # row -> index of its photo (a view shares its photo's index)

    @property
    def photos(self) -> int:
        """How many distinct photos the rows come from."""
        return int(self.photo.max()) + 1 if len(self.photo) else 0

    def __len__(self) -> int:
        return len(self.y)


def pooled_features(backbone, x: np.ndarray, batch_size: int, aug=None,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Average- and max-pooled backbone features of ``x`` (uint8 images); ``aug`` applied when given."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def step(batch):
        batch = tf.cast(batch, tf.float32)
        if aug is not None:
            batch = tf.clip_by_value(aug(batch, training=True), 0.0, 255.0)
        fmap = backbone(batch, training=False)
        return tf.reduce_mean(fmap, axis=(1, 2)), tf.reduce_max(fmap, axis=(1, 2))

    tf.random.set_seed(seed)
    out: dict[str, list] = {"avg": [], "max": []}
    for i in range(0, len(x), batch_size):
        avg, mx = step(x[i:i + batch_size])
        out["avg"].append(avg.numpy())
        out["max"].append(mx.numpy())
    return {k: np.concatenate(v) if v else np.zeros((0, 0), np.float32) for k, v in out.items()}


def cache_training_features(backbone, x: np.ndarray, y: np.ndarray, batch_size: int, views: int,
                            aug=None, seed: int = 0) -> CachedFeatures:
    """Features of the originals plus ``views`` augmented copies of each (none without ``aug``)."""
    parts = [pooled_features(backbone, x, batch_size)]
    if aug is not None:
        parts += [pooled_features(backbone, x, batch_size, aug, seed + v + 1) for v in range(views)]
    pooled = {k: np.concatenate([p[k] for p in parts]) for k in POOLINGS}
    return CachedFeatures(pooled, np.tile(y, len(parts)), np.tile(np.arange(len(y)), len(parts)))
