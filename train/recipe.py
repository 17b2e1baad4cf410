"""The head's recipe, chosen on the validation split where it is cheap: on the cached features.

A new set does not say in advance whether average or max pooling suits its defects (a large
smooth patch vs a few bright pixels) or which head learning rate converges best on a few hundred
photos. On cached features a candidate head trains in seconds, so each is tried and the one with
the lowest validation loss wins; every candidate's figures are kept in the run's history.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from train import distributed_fit
from train.config import TrainConfig
from train.data import make_dataset
from train.features import POOLINGS, CachedFeatures
from train.strategy import is_multi_worker


def candidates(config: TrainConfig) -> list[dict]:
    """The (pooling, lr_head) pairs tried: both poolings when ``pooling`` is auto; lr_head and lr_head / 3."""
    pools = POOLINGS if config.pooling == "auto" else (config.pooling,)
    lrs = (config.lr_head / 3, config.lr_head) if config.head_search else (config.lr_head,)
    return [{"pooling": p, "lr_head": lr} for p in pools for lr in lrs]


def fit_head(head, ft: np.ndarray, yt: np.ndarray, fv: np.ndarray, yv: np.ndarray, config: TrainConfig,
             class_weight: dict | None, lr: float, callbacks: list, strategy: Any = None):
    """Train ``head`` (pooled features -> softmax) with Adam at ``lr``; returns the Keras history.

    Called inside ``strategy.scope()``; under a multi-worker ``strategy`` the features go through
    train.distributed_fit (shuffled by tf.data with the run's seed, the same on every worker).
    """
    import keras

    head.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    if strategy is not None and is_multi_worker(strategy):
        return distributed_fit.fit(head, make_dataset(ft, yt, config, training=True),
                                   make_dataset(fv, yv, config, training=False), strategy=strategy,
                                   epochs=config.epochs_head, class_weight=class_weight, callbacks=callbacks)
    return head.fit(ft, yt, validation_data=(fv, yv), epochs=config.epochs_head, batch_size=config.batch_size,
                    class_weight=class_weight, shuffle=True, verbose=0, callbacks=callbacks)


def choose_recipe(train_f: CachedFeatures, val_f: CachedFeatures, config: TrainConfig, class_weight: dict,
                  num_classes: int, strategy, callbacks=()) -> tuple[dict, dict, list]:
    """Train a head per candidate; return the winner's recipe (every candidate's figures), history, weights.

    The winner is the lowest validation loss (ties: the first in :func:`candidates` order). Its
    trained weights are what the model keeps, so the search costs no extra training run.
    """
    import keras

    from train.model import standalone_head

    pairs = candidates(config)
    results, best = [], None
    for c in pairs:
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            head = standalone_head(train_f.pooled[c["pooling"]].shape[1], num_classes, config.dropout)
            stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                                 restore_best_weights=True)
            hist = fit_head(head, train_f.pooled[c["pooling"]], train_f.y, val_f.pooled[c["pooling"]],
                            val_f.y, config, class_weight, c["lr_head"], [stop, *callbacks], strategy)
        h = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        i = int(np.argmin(h["val_loss"]))
        results.append({**c, "val_loss": round(h["val_loss"][i], 6),
                        "val_accuracy": round(h["val_accuracy"][i], 6), "epochs": len(h["val_loss"])})
        # Decided on the recorded (rounded) figure, first candidate on a tie: the choice is the one the
        # history shows, and no float rounding below it can flip it.
        if best is None or results[-1]["val_loss"] < best[0]:
            best = (results[-1]["val_loss"], c, h, head.get_weights())
        if config.verbose and len(pairs) > 1:
            r = results[-1]
            print(f"[recipe] pooling {r['pooling']} lr_head {r['lr_head']:.2g}: val_loss {r['val_loss']:.4f} "
                  f"val_accuracy {r['val_accuracy']:.4f} ({r['epochs']} epochs)", file=sys.stderr, flush=True)
    _, win, history, weights = best
    recipe = {**win, "searched": len(pairs) > 1, "candidates": results if len(pairs) > 1 else []}
    return recipe, history, weights
