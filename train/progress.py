"""One readable line per epoch, prefixed with the training stage; and the early-stopping outcome."""

from __future__ import annotations

import sys
import time


def progress_callback(stage: str, epochs: int, enabled: bool = True):
    """A Keras callback printing ``[stage] epoch i/N  loss .. acc .. val_loss .. val_acc .. (t s)``."""
    import keras

    class _Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if not enabled:
                return
            logs = logs or {}
            keys = ("loss", "accuracy", "val_loss", "val_accuracy")
            parts = [f"{k} {logs[k]:.4f}" for k in keys if k in logs]
            print(f"[{stage}] epoch {epoch + 1}/{epochs}  " + "  ".join(parts)
                  + f"  ({time.perf_counter() - self._t0:.1f} s)", file=sys.stderr, flush=True)

    return _Progress()
