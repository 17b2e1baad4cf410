"""Stage 2's end: a greedy weight average ("model soup") of the models that share its start.

Stage 2 fine-tunes from the head's weights at two peak rates (train.stages.finetune_rates). The
val split that picks one of them is small: on casting, 240 val images, the two runs ended at val
losses 0.0100 and 0.0118, each with every val image or all but one right, and which is better on
new photos is a coin toss. Models fine-tuned from one start with frozen BatchNorm lie in one basin
of the loss, so their weights can be averaged (Wortsman et al., 2022, "Model soups"; and
"Robust fine-tuning of zero-shot models" for mixing in the starting weights): greedily, best val
loss first, each further model kept in the average only if the average's val loss drops. The start
(the head's weights) is an ingredient too, so the run still never ends worse than stage 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Weights = list[np.ndarray]


@dataclass(frozen=True)
class Ingredient:
    """One model's weights (``Model.get_weights()`` order), its name and its val loss."""

    name: str
    val_loss: float
    weights: Weights


def average(models: list[Weights]) -> Weights:
    """The element-wise mean of models with the same layout."""
    return [np.mean([m[i] for m in models], axis=0).astype(models[0][i].dtype) for i in range(len(models[0]))]


def greedy_soup(ingredients: list[Ingredient], score: Callable[[Weights], float]) -> tuple[Weights, dict]:
    """Average the ingredients greedily, lowest val loss first; keep one only if ``score`` drops.

    ``score`` is the val loss of a set of weights. Returns the soup's weights and a record: the
    names kept, its val loss, and every mix tried with its loss.
    """
    order = sorted(ingredients, key=lambda g: g.val_loss)  # stable: the first listed wins a tie
    kept, loss, tried = [order[0]], order[0].val_loss, []
    for g in order[1:]:
        mix = kept + [g]
        mix_loss = float(score(average([m.weights for m in mix])))
        tried.append({"ingredients": [m.name for m in mix], "val_loss": round(mix_loss, 6)})
        if mix_loss < loss:
            kept, loss = mix, mix_loss
    weights = average([m.weights for m in kept]) if len(kept) > 1 else kept[0].weights
    return weights, {"ingredients": [m.name for m in kept], "val_loss": round(loss, 6), "tried": tried}
