"""The model the latency benchmarks time: MobileNetV2 with a 2-class head, built as train builds it."""

from __future__ import annotations


def mobilenet_v2_classifier(size: int, alpha: float, weights: str | None = None):
    """A Keras MobileNetV2 (+ softmax head) taking RGB 0..255, like a trained run's model.

    Latency does not depend on weight values, so ``weights=None`` (random init) times the same
    graph as a trained model; pass the shared ImageNet ``.h5`` to time real weights.
    """
    import keras

    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, include_top=False,
                                          weights=weights, pooling="avg")
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)  # normalization inside the model
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(base(x)))
