"""What caching the frozen backbone's features buys: one head epoch vs one full-backbone epoch.

Three ways to run one training epoch over the same images, interleaved in rounds (shared,
noisy machine: compare ratios from one run), after an untimed warm-up epoch of each:

- ``head_cached``: the head trained on cached pooled features (stage 1 of ``python -m train``);
- ``head_uncached``: the same head with the frozen backbone run on every batch (no cache);
- ``finetune``: the whole model with the top blocks unfrozen (stage 2).

The one-time cost of computing the cache is reported too. Weights are random: the cost of an
epoch does not depend on their values. ``python -m benchmarks.head_epoch_cost [--images N --size PX]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks.harness import interleaved, write_result
from runtime.tf_logs import quiet_tensorflow


def _variants(images: int, size: int, alpha: float, batch: int) -> tuple[dict, dict]:
    import keras

    from train.config import TrainConfig
    from train.features import pooled_features
    from train.model import build_classifier, freeze_backbone, unfreeze_top_blocks
    from train.synth import render_part
    from train.weights import WeightsChoice

    cfg = TrainConfig(data="-", alpha=alpha, image_size=size, batch_size=batch, verbose=False)
    rng = np.random.default_rng(0)
    x = np.stack([render_part(rng, None if i % 2 else "pit", size) for i in range(images)]).astype(np.float32)
    y = (np.arange(images) % 2).astype(np.int32)
    clf = build_classifier(cfg, 2, WeightsChoice("none", "none", None, None))
    freeze_backbone(clf)
    t0 = time.perf_counter()
    feats = pooled_features(clf.backbone, x.astype(np.uint8), batch)["avg"]
    cache_s = time.perf_counter() - t0
    # Separate model objects per variant, so that each keeps its own compiled train function.
    uncached = keras.Model(clf.model.input, clf.model.output)
    finetune = keras.models.clone_model(clf.model)
    finetune.set_weights(clf.model.get_weights())
    for m, lr in ((clf.head, 1e-3), (uncached, 1e-3)):
        m.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    ft_clf = type(clf)(model=finetune, backbone=finetune.layers[1], features=None, head=None)
    unfreeze_top_blocks(ft_clf, cfg)
    finetune.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy")
    fit = {"verbose": 0, "epochs": 1, "batch_size": batch, "shuffle": True}
    variants = {
        "head_cached": lambda: clf.head.fit(feats, y, **fit),
        "head_uncached": lambda: uncached.fit(x, y, **fit),
        "finetune": lambda: finetune.fit(x, y, **fit),
    }
    return variants, {"cache_seconds": cache_s, "feature_dim": int(feats.shape[1])}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table and write ``results/head_epoch_cost-*.json``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.head_epoch_cost",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=256, help="images per epoch (default: %(default)s)")
    p.add_argument("--size", type=int, default=160, help="input size in px (default: %(default)s)")
    p.add_argument("--alpha", type=float, default=1.0, help="MobileNetV2 width (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: %(default)s)")
    p.add_argument("--out", default="results", help="results folder (default: %(default)s)")
    a = p.parse_args(argv)
    quiet_tensorflow()
    variants, extra = _variants(a.images, a.size, a.alpha, a.batch_size)
    timings = interleaved(variants, rounds=a.rounds, iters=1, warmup=1)
    epoch = {k: v["median_of_rounds_ms"] / 1e3 for k, v in timings.items()}
    ratios = {"cached_vs_uncached_head": epoch["head_cached"] / epoch["head_uncached"],
              "cached_head_vs_finetune": epoch["head_cached"] / epoch["finetune"]}
    print(f"MobileNetV2 alpha {a.alpha}, {a.size} px, {a.images} images, batch {a.batch_size}, "
          f"median of {a.rounds} interleaved rounds")
    for k, s in epoch.items():
        print(f"  {k:<14} {s:8.3f} s/epoch")
    print(f"  feature cache (once) {extra['cache_seconds']:.3f} s")
    print(f"  head epoch on cached features = {100 * ratios['cached_vs_uncached_head']:.2f}% of an uncached "
          "head "
          f"epoch, {100 * ratios['cached_head_vs_finetune']:.2f}% of a fine-tuning epoch")
    path = write_result("head_epoch_cost", {"params": vars(a), "epoch_seconds": epoch, "ratios": ratios,
                                            "timings": timings, **extra}, a.out)
    print(f"  -> {path}")
    return 0 if ratios["cached_vs_uncached_head"] <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
