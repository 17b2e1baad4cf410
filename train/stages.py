"""The training stages: head on cached features, fine-tuning of the top blocks, or from scratch.

Each returns its history (``{"loss": [...], ..., "stage": name}``) with the best epoch restored.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from train import distributed_fit
from train.config import TrainConfig
from train.data import augmenter, make_dataset, training_rows
from train.evaluate import cross_entropies
from train.evidence import paired_gain, resolved
from train.features import CachedFeatures, cache_training_features
from train.model import Classifier, freeze_backbone, unfreeze_top_blocks
from train.progress import progress_callback
from train.recipe import choose_recipe, early_stopping
from train.soup import Ingredient, greedy_soup
from train.strategy import is_multi_worker


def _callbacks(stage: str, epochs: int, config: TrainConfig) -> list:
    return [early_stopping(config), progress_callback(stage, epochs, config.verbose)]


def _compile(model, lr: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def _record(stage: str, hist, seconds: float, **extra) -> dict:
    """A stage's history entry from a Keras History (or its ``history`` dict)."""
    h = {k: [float(v) for v in vals] for k, vals in getattr(hist, "history", hist).items()}
    best = int(np.argmin(h["val_loss"])) if h.get("val_loss") else None
    return {"stage": stage, "seconds": round(seconds, 2), "best_epoch": None if best is None else best + 1,
            **h, **extra}


def val_losses(model, x: np.ndarray, y: np.ndarray, config: TrainConfig) -> np.ndarray:
    """Each image's cross-entropy under ``model``; their mean is Keras's ``val_loss`` (no class weights)."""
    return cross_entropies(model.predict(make_dataset(x, y, config, training=False), verbose=0), y)


def val_loss(model, x: np.ndarray, y: np.ndarray, config: TrainConfig) -> float:
    """Mean cross-entropy of ``model`` on ``(x, y)``, as Keras computes ``val_loss`` (no class weights)."""
    return float(np.mean(val_losses(model, x, y, config)))


RARE_CLASS_PHOTOS = 50  # training photos below which a class is rare (rare_class_views)


def views_for(config: TrainConfig, y: np.ndarray) -> int:
    """Augmented views per training photo: ``rare_class_views`` when a class is rare, else ``head_views``.

    Rare classes are what the views are for. Measured on the hard steel variant (classes of 15-27
    training photos), hold-out defects the model called good: 13-15 of 200 with 2 views (3 runs),
    6-10 with 4 to 16 (6 runs); on casting (560 photos a class) 4 views gained nothing (239/240 vs 240/240).
    """
    if not config.head_views or not config.rare_class_views:
        return config.head_views
    rarest = int(np.bincount(y).min()) if len(y) else 0
    if rarest < RARE_CLASS_PHOTOS:
        return max(config.head_views, config.rare_class_views)
    return config.head_views


def head_features(clf: Classifier, data, config: TrainConfig) -> tuple[CachedFeatures, CachedFeatures, float]:
    """Stage 1's cached features: the training photos (with augmented views, :func:`views_for`) and val."""
    freeze_backbone(clf)
    (xt, yt), (xv, yv) = data
    t0 = time.perf_counter()
    views = views_for(config, yt)
    aug = augmenter(config) if views else None
    train_f = cache_training_features(clf.backbone, xt, yt, config.batch_size, views, aug, config.seed)
    val_f = cache_training_features(clf.backbone, xv, yv, config.batch_size, 0)
    secs = time.perf_counter() - t0
    if config.verbose:
        views = f" ({len(xt)} photos x {len(train_f) // max(1, len(xt))} views)" if aug is not None else ""
        print(f"[head] cached {train_f.pooled['avg'].shape[1]}-d features of {len(train_f)}{views} + "
              f"{len(val_f)} images in {secs:.1f} s", file=sys.stderr, flush=True)
    return train_f, val_f, secs


def train_head(clf: Classifier, features, config: TrainConfig, class_weight: dict, strategy,
               num_classes: int) -> dict:
    """Stage 1: frozen backbone; a head per recipe candidate on the cached features, the best one kept."""
    train_f, val_f, t_cache = features
    t0 = time.perf_counter()
    progress = [progress_callback("head", config.epochs_head, config.verbose)] if not (
        config.head_search or config.pooling == "auto") else []
    recipe, history, weights = choose_recipe(train_f, val_f, config, class_weight, num_classes, strategy,
                                             progress)
    clf.head.set_weights(weights)  # same layers as the saved model's classifier
    return _record("head", history, time.perf_counter() - t0, feature_cache_seconds=round(t_cache, 2),
                   train_feature_rows=len(train_f), recipe=recipe)


def finetune(clf: Classifier, data, config: TrainConfig, class_weight: dict, strategy) -> dict:
    """Stage 2: top blocks unfrozen at a low learning rate, BatchNorm in inference mode.

    Each candidate peak rate (see :func:`finetune_rates`) starts from the head's weights. The run
    keeps the greedy weight average of the candidates and the head's weights (train.soup) when
    ``finetune_soup`` is on, else the candidate with the lowest val loss, and that only where it beats
    the head's own val loss by ``finetune_evidence`` standard errors of the paired per-image gain
    (train.evidence): a gain one or two val images make is not evidence, and the head's model, its
    backbone as pretrained, quantizes better (measured in the README).
    """
    import keras

    n = unfreeze_top_blocks(clf, config)
    if config.verbose:
        print(f"[finetune] {n} backbone layers trainable (top {config.finetune_blocks} blocks, "
              "BatchNorm frozen)", file=sys.stderr, flush=True)
    # Step 0: the model entering stage 2 must be the one stage 1 ended with (its val loss, same pixels).
    start_losses = val_losses(clf.model, *data[1], config)
    start = float(np.mean(start_losses))
    snapshot = clf.model.get_weights()
    best, tried, ingredients = None, [], [Ingredient("head", start, snapshot)]  # listed first: wins a tie
    for lr in finetune_rates(config):
        keras.utils.set_random_seed(config.seed)  # same start, same shuffles and dropout: a fair comparison
        clf.model.set_weights(snapshot)
        h = _fit_whole("finetune", clf, data, config, class_weight, strategy, config.epochs_finetune, lr)
        tried.append({"lr_finetune": lr, "val_loss": round(min(h["val_loss"]), 6), "epochs": len(h["loss"])})
        ingredients.append(Ingredient(f"finetune@{lr:.0e}", min(h["val_loss"]), clf.model.get_weights()))
        if best is None or tried[-1]["val_loss"] < best[0]:  # the recorded figure; first wins a tie
            best = (tried[-1]["val_loss"], h, lr, ingredients[-1].weights)
    _, h, lr, weights = best
    h.update(start_val_loss=start, lr_finetune=lr, candidates=tried if len(tried) > 1 else [])
    h["evidence"] = {**paired_gain(start_losses, _val_losses_with(clf.model, weights, data[1], config)),
                     "min_z": config.finetune_evidence}
    h["improved"] = bool(min(h["val_loss"]) < start) and resolved(h["evidence"], config.finetune_evidence)
    weights = weights if h["improved"] else snapshot  # never end worse than the head, nor on one image
    if config.finetune_soup:
        weights, h["soup"] = greedy_soup(ingredients, lambda w: _val_loss_with(clf.model, w, data[1], config))
        h["improved"] = h["soup"]["ingredients"] != ["head"]
    clf.model.set_weights(weights)
    if config.verbose:
        _report_finetune(h, tried, start)
    return h


def _val_loss_with(model, weights, val, config: TrainConfig) -> float:
    return float(np.mean(_val_losses_with(model, weights, val, config)))


def _val_losses_with(model, weights, val, config: TrainConfig) -> np.ndarray:
    model.set_weights(weights)
    return val_losses(model, *val, config)


def _report_finetune(h: dict, tried: list[dict], start: float) -> None:
    rates = [t["lr_finetune"] for t in tried]
    chosen = f" (peak rate {h['lr_finetune']:.0e} of {rates})" if len(tried) > 1 else ""
    ev = h["evidence"]
    verdict = "kept" if h["improved"] else "no better than the head's: the head's weights are kept"
    if not h["improved"] and min(h["val_loss"]) < start and "soup" not in h:
        z = "no spread" if ev["z"] is None else f"{ev['z']:.2f}"
        verdict = (f"lower by {ev['gain']:.4f}, {z} standard errors over {ev['n']} val images (needs "
                   f"{ev['min_z']:g}): not evidence, the head's weights are kept")
    if h["improved"] and len(h.get("soup", {}).get("ingredients", [])) > 1:
        verdict = (f"the weight average of {' + '.join(h['soup']['ingredients'])} is kept "
                   f"(val loss {h['soup']['val_loss']:.4f})")
    print(f"[finetune] best val loss {min(h['val_loss']):.4f}{chosen} vs the head's {start:.4f}: "
          f"{verdict}", file=sys.stderr, flush=True)


def finetune_rates(config: TrainConfig) -> tuple[float, ...]:
    """The peak learning rates stage 2 tries: ``lr_finetune`` and a tenth of it (``finetune_search``).

    Measured once each (see the README): on 1,120 casting photos 1e-4 reached 240/240 on test and
    1e-5 238/240; on 311 photos of a 6-class steel set 1e-4 took val accuracy from the head's 98.5% to
    71% by its second epoch, while 1e-5 lowered the val loss in its first.
    Which one a new set wants is not known in advance, so both run and validation decides.
    """
    return (config.lr_finetune / 10, config.lr_finetune) if config.finetune_search else (config.lr_finetune,)


def train_scratch(clf: Classifier, data, config: TrainConfig, class_weight: dict, strategy) -> dict:
    """No pretrained weights: frozen features would be random, so the whole net trains."""
    clf.backbone.trainable = True
    return _fit_whole("scratch", clf, data, config, class_weight, strategy, config.epochs_scratch,
                      config.lr_scratch)


def _schedule(stage: str, lr: float, epochs: int, steps_per_epoch: int):
    """Cosine decay over the planned epochs; fine-tuning also warms up over its first epoch.

    From scratch, the net needs a high rate early and a low one to settle. Fine-tuning starts from a
    trained head: Adam moves every unfrozen weight by about the learning rate per step whatever its
    gradient, so the rate ramps up from zero and peaks low (see :func:`finetune_rates`).
    """
    import keras

    steps = max(1, epochs * steps_per_epoch)
    if stage == "finetune":
        warm = min(steps_per_epoch, steps // 2)
        return keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, steps - warm), alpha=0.1,
                                                      warmup_target=lr, warmup_steps=warm)
    return keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps, alpha=0.02)


def _fit_whole(stage, clf, data, config, class_weight, strategy, epochs: int, lr: float) -> dict:
    (xt, yt), (xv, yv) = data
    rows = training_rows(yt, config)
    train_ds = make_dataset(xt, yt, config, training=True, aug=augmenter(config), rows=rows)
    val_ds = make_dataset(xv, yv, config, training=False)
    per_epoch = len(xt) if rows is None else len(rows)
    lr = _schedule(stage, lr, epochs, -(-per_epoch // config.batch_size))
    with strategy.scope():
        _compile(clf.model, lr)
    t0 = time.perf_counter()
    callbacks = _callbacks(stage, epochs, config)
    if is_multi_worker(strategy):  # Keras's fit fails there: see train.distributed_fit
        hist = distributed_fit.fit(clf.model, train_ds, val_ds, strategy=strategy, epochs=epochs,
                                   class_weight=class_weight, callbacks=callbacks)
    else:
        hist = clf.model.fit(train_ds, validation_data=val_ds, epochs=epochs, class_weight=class_weight,
                             shuffle=False, verbose=0, callbacks=callbacks)
    return _record(stage, hist, time.perf_counter() - t0)
