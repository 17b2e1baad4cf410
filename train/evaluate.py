"""Classification metrics from probabilities (numpy only): accuracy, per-class P/R/F1, confusion matrix.

Each rate has a sibling ``<name>_ci``: its count (k of n) and 95% Wilson interval (``runtime.rates``).
"""

from __future__ import annotations

import numpy as np

from runtime.rates import rate

KERAS_EPS = 1e-7  # Keras clips probabilities to [eps, 1 - eps] in its cross-entropy


def cross_entropies(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each image's cross-entropy of ``probs`` for labels ``y``, clipped as Keras clips it."""
    return -np.log(np.clip(probs[np.arange(len(y)), y], KERAS_EPS, 1 - KERAS_EPS))


def mean_cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of ``probs`` for labels ``y``, as Keras computes ``val_loss`` (no class weights)."""
    return float(np.mean(cross_entropies(probs, y)))


def classification_metrics(probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, per-class ``{precision, recall, f1, support}``, ``confusion_matrix``, ``labels``, ``n``.

    Confusion matrix rows are true classes, columns predicted classes, both in label index order.
    """
    pred = probs.argmax(1)
    k = len(labels)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    per_class = {}
    for i, lab in enumerate(labels):
        tp, support, predicted = cm[i, i], cm[i].sum(), cm[:, i].sum()
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class[lab] = {"precision": round(float(p), 6), "recall": round(float(r), 6),
                          "f1": round(float(f1), 6), "support": int(support),
                          "precision_ci": rate(int(tp), int(predicted)),
                          "recall_ci": rate(int(tp), int(support))}
    acc = float(np.trace(cm) / cm.sum()) if cm.sum() else 0.0
    return {"accuracy": round(acc, 6), "accuracy_ci": rate(int(np.trace(cm)), int(cm.sum())),
            "n": int(cm.sum()), "per_class": per_class, "confusion_matrix": cm.tolist(),
            "labels": list(labels)}


def defect_recall(metrics: dict, ok_label: str) -> dict:
    """Defective parts (any non-ok class) predicted as some defect class, as a :func:`runtime.rates.rate`."""
    labels, cm = metrics["labels"], np.array(metrics["confusion_matrix"])
    ok = labels.index(ok_label)
    defect_rows = [i for i in range(len(labels)) if i != ok]
    total = int(cm[defect_rows].sum())
    return rate(total - int(cm[defect_rows, ok].sum()), total)


def false_alarm_rate(metrics: dict, ok_label: str) -> dict:
    """Good parts predicted as some defect class, as a :func:`runtime.rates.rate`."""
    labels, cm = metrics["labels"], np.array(metrics["confusion_matrix"])
    ok = labels.index(ok_label)
    total = int(cm[ok].sum())
    return rate(total - int(cm[ok, ok]), total)


def predict(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Probabilities of the Keras model on uint8 images (cast to float32 0..255)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(x).batch(batch_size).map(lambda a: tf.cast(a, tf.float32))
    return model.predict(ds, verbose=0)
