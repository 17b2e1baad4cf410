"""Stage 1's recipe choice: folds grouped by photo; no view of a photo leaks into its out-of-fold score."""

import numpy as np

from train.config import resolve
from train.features import CachedFeatures
from train.recipe import out_of_fold_loss, photo_folds


def test_photo_folds_give_every_photo_one_fold_and_spread_each_class():
    y = np.array([0] * 23 + [1] * 7 + [2] * 3)
    fold = photo_folds(y, 5, seed=0)
    assert fold.shape == y.shape and set(fold) == set(range(5))
    for c in range(3):
        counts = np.bincount(fold[y == c], minlength=5)
        assert counts.max() - counts.min() <= 1  # a class is spread as evenly as its size allows
    # Small classes do not all start in fold 0: the three classes of 3-23 photos fill the folds evenly.
    assert np.bincount(fold, minlength=5).max() - np.bincount(fold, minlength=5).min() <= 1
    assert np.array_equal(fold, photo_folds(y, 5, seed=0))  # the run's seed decides, nothing else
    assert not np.array_equal(fold, photo_folds(y, 5, seed=1))


def _memorisable(photos: int, views: int, seed: int) -> tuple[CachedFeatures, CachedFeatures]:
    """Random labels; each photo's features are its own one-hot id, the same in every view.

    A head can only learn a photo's label from rows of that very photo, so its out-of-fold loss is
    near chance (log 2) when no view of a scored photo is trained on, and near 0 when one is.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, photos)
    ids = np.eye(photos, dtype=np.float32) * 4.0
    rows = np.tile(np.arange(photos), views + 1)
    train = CachedFeatures({"avg": ids[rows]}, y[rows], rows)
    val_ids = np.zeros((10, photos), np.float32)  # val images share no id with any training photo
    val = CachedFeatures({"avg": val_ids}, rng.integers(0, 2, 10), np.arange(10))
    return train, val


def test_out_of_fold_loss_never_trains_on_a_view_of_the_photo_it_scores():
    train, val = _memorisable(photos=40, views=3, seed=0)
    config = resolve({"recipe_folds": 5, "epochs_head": 40, "patience": 40, "dropout": 0.0, "seed": 0})
    assert train.photos == 40 and len(train) == 160
    grouped = out_of_fold_loss(train, val, "avg", 0.05, config, None, 2)
    # The same rows with every view counted as a photo of its own: a scored row's sibling views are
    # trained on, and the heads memorise them. The contrast shows the grouping is what keeps it out.
    by_row = CachedFeatures(train.pooled, train.y, np.arange(len(train)))
    leaky = out_of_fold_loss(by_row, val, "avg", 0.05, config, None, 2)
    assert leaky < 0.2 < 0.4 < grouped, (leaky, grouped)  # chance is log 2 = 0.69
