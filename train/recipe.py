"""The head's recipe, chosen where it is cheap: on the cached features (optionally cross-validated).

A new set does not say in advance whether average or max pooling suits its defects (a large
smooth patch vs a few bright pixels) or which head learning rate converges best on a few hundred
photos. On cached features a candidate head trains in seconds, so each is tried; every candidate's
figures are kept in the run's history.

By default the lowest val loss wins. A small val split is weak ground for that: once every val
image is right, its loss only says how confident a head is. On the hard steel variant's cached
features (66 val images, all right for every candidate) it chose max pooling in each of 3 seeds,
and that head called 5-9 of 200 unseen defects good where the average-pooled one called 4-6
(figures in the README). With ``recipe_folds`` each candidate is also scored out of fold on the
training photos (folds grouped by photo so that no augmented view of a photo helps to score it),
and the loss over those photos and the val split together decides. It is not the default: on
neu_det it chose another head than the val loss did and the run ended 2 test images worse
(268/270 against 270/270); on casting and the hard variant both rules chose the same head.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from train import distributed_fit
from train.config import TrainConfig
from train.data import make_dataset, training_rows
from train.evaluate import mean_cross_entropy
from train.features import POOLINGS, CachedFeatures
from train.strategy import is_multi_worker


def candidates(config: TrainConfig) -> list[dict]:
    """The (pooling, lr_head) pairs tried: both poolings when ``pooling`` is auto; lr_head and lr_head / 3."""
    pools = POOLINGS if config.pooling == "auto" else (config.pooling,)
    lrs = (config.lr_head / 3, config.lr_head) if config.head_search else (config.lr_head,)
    return [{"pooling": p, "lr_head": lr} for p in pools for lr in lrs]


def early_stopping(config: TrainConfig):
    """Stop on the val loss after ``patience`` epochs without a better one, and restore the best weights."""
    import keras

    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                         restore_best_weights=True)


def fit_head(head, ft: np.ndarray, yt: np.ndarray, fv: np.ndarray, yv: np.ndarray, config: TrainConfig,
             class_weight: dict | None, lr: float, callbacks: list, strategy: Any = None):
    """Train ``head`` (pooled features -> softmax) with Adam at ``lr``; returns the Keras history.

    Called inside ``strategy.scope()``; under a multi-worker ``strategy`` the features go through
    train.distributed_fit (shuffled by tf.data with the run's seed, the same on every worker).
    """
    import keras

    rows = training_rows(yt, config)
    if rows is not None:  # pooled features are small: copying the repeats costs little
        ft, yt = ft[rows], yt[rows]
    head.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    if strategy is not None and is_multi_worker(strategy):
        return distributed_fit.fit(head, make_dataset(ft, yt, config, training=True),
                                   make_dataset(fv, yv, config, training=False), strategy=strategy,
                                   epochs=config.epochs_head, class_weight=class_weight, callbacks=callbacks)
    return head.fit(ft, yt, validation_data=(fv, yv), epochs=config.epochs_head, batch_size=config.batch_size,
                    class_weight=class_weight, shuffle=True, verbose=0, callbacks=callbacks)


def photo_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold index (0..folds-1) of each photo, ``y`` its label: each class spread evenly, in random order."""
    rng = np.random.default_rng(seed)
    fold, start = np.empty(len(y), dtype=np.int64), 0
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        fold[idx] = (start + np.arange(len(idx))) % folds
        start += len(idx)  # the next class starts where this one ended: small ones do not pile up in fold 0
    return fold


def out_of_fold_loss(train_f: CachedFeatures, val_f: CachedFeatures, pooling: str, lr: float,
                     config: TrainConfig, class_weight: dict | None, num_classes: int) -> float:
    """Mean cross-entropy on each training photo of a head trained without it (nor any view of it).

    Each fold's head stops early on the val split, as the real head does. Plain Keras on one
    process, also under a multi-worker strategy: every worker computes the same figure.
    """
    import keras

    from train.model import standalone_head

    n = train_f.photos
    fold = photo_folds(train_f.y[:n], config.recipe_folds, config.seed)
    f, fv = train_f.pooled[pooling], val_f.pooled[pooling]
    p = np.zeros((n, num_classes), dtype=np.float64)
    for k in range(config.recipe_folds):
        fit_rows, scored = fold[train_f.photo] != k, np.flatnonzero(fold == k)
        if not scored.size:
            continue
        keras.utils.set_random_seed(config.seed)
        head = standalone_head(f.shape[1], num_classes, config.dropout)
        fit_head(head, f[fit_rows], train_f.y[fit_rows], fv, val_f.y, config, class_weight, lr,
                 [early_stopping(config)])
        p[scored] = head.predict(f[scored], verbose=0, batch_size=256)
    return mean_cross_entropy(p, train_f.y[:n])


def cross_validates(train_f: CachedFeatures, config: TrainConfig, candidates_tried: int) -> bool:
    """Whether there is a choice to make and enough photos for every fold to score some."""
    return candidates_tried > 1 and config.recipe_folds >= 2 and train_f.photos >= 2 * config.recipe_folds


def choose_recipe(train_f: CachedFeatures, val_f: CachedFeatures, config: TrainConfig, class_weight: dict,
                  num_classes: int, strategy, callbacks=()) -> tuple[dict, dict, list]:
    """Train a head per candidate; return the winner's recipe (every candidate's figures), history, weights.

    The winner has the lowest ``score``: the mean loss over the val images (the head's val loss)
    and the training photos scored out of fold (:func:`out_of_fold_loss`), or the val loss alone
    when there is nothing to cross-validate (ties: the first in :func:`candidates` order). The
    winner's head trained on every training photo is what the model keeps.
    """
    import keras

    from train.model import standalone_head

    pairs = candidates(config)
    cv = cross_validates(train_f, config, len(pairs))
    results, best = [], None
    for c in pairs:
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            head = standalone_head(train_f.pooled[c["pooling"]].shape[1], num_classes, config.dropout)
            hist = fit_head(head, train_f.pooled[c["pooling"]], train_f.y, val_f.pooled[c["pooling"]],
                            val_f.y, config, class_weight, c["lr_head"], [early_stopping(config), *callbacks],
                            strategy)
        h = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        i = int(np.argmin(h["val_loss"]))
        r = {**c, "val_loss": round(h["val_loss"][i], 6), "val_accuracy": round(h["val_accuracy"][i], 6),
             "epochs": len(h["val_loss"])}
        r["score"] = r["val_loss"]
        if cv:
            r["cv_loss"] = round(out_of_fold_loss(train_f, val_f, c["pooling"], c["lr_head"], config,
                                                  class_weight, num_classes), 6)
            n_val, n_train = len(val_f), train_f.photos
            r["score"] = round((n_val * h["val_loss"][i] + n_train * r["cv_loss"]) / (n_val + n_train), 6)
        results.append(r)
        # Decided on the recorded (rounded) figure, first candidate on a tie: the choice is the one the
        # history shows, and no float rounding below it can flip it.
        if best is None or r["score"] < best[0]:
            best = (r["score"], c, h, head.get_weights())
        if config.verbose and len(pairs) > 1:
            print(_candidate_line(r, config.recipe_folds if cv else 0, train_f.photos), file=sys.stderr,
                  flush=True)
    _, win, history, weights = best
    recipe = {**win, "searched": len(pairs) > 1, "candidates": results if len(pairs) > 1 else [],
              "chosen_on": (f"val split + {config.recipe_folds}-fold cross-validation on the training photos"
                            if cv else "val split")}
    return recipe, history, weights


def _candidate_line(r: dict, folds: int, photos: int) -> str:
    line = (f"[recipe] pooling {r['pooling']} lr_head {r['lr_head']:.2g}: val_loss {r['val_loss']:.4f} "
            f"val_accuracy {r['val_accuracy']:.4f} ({r['epochs']} epochs)")
    if folds:
        line += (f", out-of-fold loss {r['cv_loss']:.4f} ({folds} folds of {photos} photos), "
                 f"score {r['score']:.4f}")
    return line
