"""``model.fit`` for ``MultiWorkerMirroredStrategy``: a small distributed training loop.

Keras 3's ``fit`` cannot run under ``MultiWorkerMirroredStrategy``: before the first step it builds
the model from one batch of the distributed dataset, and with one replica per worker that batch
comes back as a ``PerReplica`` value it then fails to convert to a tensor ("Attempt to convert a
value (PerReplica:{...}) with an unsupported type", keras-team/keras#20585, tensorflow#72388).
The rest of the TensorFlow backend does work there: the model, the compiled Keras optimizer (its
``apply_gradients`` all-reduces the gradients when called inside ``strategy.run``) and its
learning-rate schedule. So this loop only replaces the driver, and keeps what ``fit`` computes:

- loss: sparse categorical cross-entropy times the class weight, summed and divided by the global
  batch (the real one: the last batch is smaller, and a worker's share of it may be empty); the
  epoch's ``loss`` is the mean over its examples, as Keras's loss tracker gives it;
- ``accuracy``, ``val_loss``, ``val_accuracy``: unweighted, over the whole split (all workers);
- the same Keras callbacks (``EarlyStopping`` with its best-weights restore, the progress lines),
  given the same epoch logs, and a ``keras.callbacks.History`` returned.

Every worker runs the same input pipeline with the same seeds and takes its slice of each global
batch. BatchNorm normalises by each worker's slice while training (as ``MirroredStrategy`` does
across GPUs); its moving statistics are averaged over the workers after every epoch. So every
worker holds the same weights (checked: all 262 arrays of a MobileNetV2 equal after training) and
sees the same validation figures, hence early stopping takes the same decisions everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from train.errors import TrainError

LOSS = "sparse_categorical_crossentropy"  # what train.stages and train.recipe compile the models with


def fit(model, train_ds, val_ds, *, strategy, epochs: int, class_weight: dict | None,
        callbacks: list) -> Any:
    """Train the compiled ``model`` like ``model.fit(train_ds, validation_data=val_ds, ...)``.

    ``train_ds`` and ``val_ds`` are batched ``(x, label index)`` datasets whose batch size is the
    global one. Returns a ``keras.callbacks.History`` with ``loss``, ``accuracy``, ``val_loss`` and
    ``val_accuracy`` per epoch. Batch-level callback hooks are not called (none of ours uses them).
    """
    import keras

    _check_compiled(model)
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)  # its slots mirrored, before any tracing
    weights = _class_weights(class_weight, model.output_shape[-1])
    train, val = (strategy.experimental_distribute_dataset(_shard_by_data(d)) for d in (train_ds, val_ds))
    history = keras.callbacks.History()
    hooks = keras.callbacks.CallbackList([*callbacks, history], model=model, epochs=epochs, verbose=0)
    train_step, val_step = _train_step(model, strategy, weights, train), _val_step(model, strategy, val)
    average = _average_step(model, strategy)
    model.stop_training = False
    hooks.on_train_begin()
    for epoch in range(epochs):
        hooks.on_epoch_begin(epoch)
        logs = _epoch(train_step, train, "")
        average()
        logs.update(_epoch(val_step, val, "val_"))
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end()
    return history


def _check_compiled(model) -> None:
    loss = getattr(model, "loss", None)
    if getattr(model, "optimizer", None) is None or loss != LOSS:
        raise TrainError(f"train.distributed_fit needs a model compiled with loss {LOSS!r} and an optimizer "
                         f"(got loss {loss!r}); compile it as train.stages does before training")


def _class_weights(class_weight: dict | None, num_classes: int):
    import tensorflow as tf

    w = np.ones(num_classes, np.float32)
    for k, v in (class_weight or {}).items():
        w[int(k)] = v
    return tf.constant(w)


def _shard_by_data(ds):
    import tensorflow as tf

    # Our datasets come from arrays in memory, not files: say so, rather than let tf.data try to
    # shard by file, fail and fall back (with a warning on every run).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _moving_statistics(model) -> list:
    import keras

    bn = [ly for ly in _all_layers(model) if isinstance(ly, keras.layers.BatchNormalization)]
    return [v for ly in bn for v in (ly.moving_mean, ly.moving_variance)]


def _all_layers(model) -> Iterator[Any]:
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # a nested model: the backbone
            yield from _all_layers(layer)


def _average_step(model, strategy):
    """Average BatchNorm's moving statistics over the workers, so that every worker holds the same model.

    Each worker updates them from its own share of each batch. They are moving averages with the same
    momentum from the same start, hence linear: averaging once per epoch, before validation, gives
    what averaging at every step would. (``synchronized=True`` BatchNorm, statistics over the global
    batch, was tried instead: its three all-reduces per layer and step, plus their gradients, made a
    2-epoch MobileNetV2 run take 147 s instead of 46 s on two local processes, nearly all of it in
    setting them up in the first step; here it is one all-reduce per epoch.)
    """
    import tensorflow as tf

    stats = _moving_statistics(model)

    def replica_step():
        means = tf.distribute.get_replica_context().all_reduce("mean", [tf.identity(v.value) for v in stats])
        for v, m in zip(stats, means, strict=True):
            v.assign(m)

    @tf.function
    def step():
        if stats:
            strategy.run(replica_step)

    return step


def _sums(per_example, y, probs):
    """Summed loss, correct predictions and examples: additive, so they reduce across workers exactly."""
    import tensorflow as tf

    correct = tf.cast(tf.equal(tf.argmax(probs, -1, output_type=y.dtype), y), tf.float32)
    return tf.reduce_sum(per_example), tf.reduce_sum(correct), tf.cast(tf.size(y), tf.float32)


def _train_step(model, strategy, class_weights, dataset):
    import keras
    import tensorflow as tf

    optimizer, variables = model.optimizer, model.trainable_variables

    def replica_step(x, y):
        n = tf.distribute.get_replica_context().all_reduce("sum", tf.size(y))  # this step's global batch
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(y, probs) * tf.gather(class_weights, y)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=n)
            if model.losses:  # weight regularizers, if a backbone has them (Keras's fit adds them too)
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))  # all-reduces the gradients itself
        return _sums(per_example, y, probs)

    # One trace for every batch: without the signature the smaller last batch traces (and, under a
    # multi-worker strategy, sets up its collectives) a second time, which took ~15 s here.
    @tf.function(input_signature=[dataset.element_spec])
    def step(batch):
        return [strategy.reduce("sum", s, axis=None) for s in strategy.run(replica_step, args=batch)]

    return step


def _val_step(model, strategy, dataset):
    import keras
    import tensorflow as tf

    def replica_step(x, y):
        probs = model(x, training=False)
        return _sums(keras.losses.sparse_categorical_crossentropy(y, probs), y, probs)

    # One trace for every batch: without the signature the smaller last batch traces (and, under a
    # multi-worker strategy, sets up its collectives) a second time, which took ~15 s here.
    @tf.function(input_signature=[dataset.element_spec])
    def step(batch):
        return [strategy.reduce("sum", s, axis=None) for s in strategy.run(replica_step, args=batch)]

    return step


def _epoch(step, dataset, prefix: str) -> dict[str, float]:
    """One pass over ``dataset``: mean loss and accuracy per example (float64 sums across the steps)."""
    loss = correct = n = 0.0
    for batch in dataset:
        b_loss, b_correct, b_n = step(batch)
        loss, correct, n = loss + float(b_loss), correct + float(b_correct), n + float(b_n)
    if not n:
        raise TrainError(f"the {'validation' if prefix else 'training'} split gave no batches to train on; "
                         "check the split sizes in data_report.md")
    return {f"{prefix}loss": loss / n, f"{prefix}accuracy": correct / n}
