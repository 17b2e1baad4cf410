"""PNG plots of a run: training curves (all stages on one time axis) and the confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_training_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch, train and val, stages separated by vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    offset = 0
    for stage in history:
        n = len(stage.get("loss", []))
        epochs = np.arange(offset + 1, offset + n + 1)
        for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
            ax.plot(epochs, stage.get(key, []), "-o", ms=3, label=f"{stage['stage']} train")
            ax.plot(epochs, stage.get(f"val_{key}", []), "--o", ms=3, label=f"{stage['stage']} val")
            if offset:
                ax.axvline(offset + 0.5, color="grey", lw=0.8)
        offset += n
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(metrics: dict, path: Path, title: str = "test split") -> None:
    """Confusion matrix with counts (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(metrics["confusion_matrix"])
    labels = metrics["labels"]
    size = 2.5 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: accuracy {metrics['accuracy']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
