"""Helpers for tests/test_train_multiworker.py: a two-worker cluster on loopback, and a tiny worker.

``python -m tests.multiworker_support DIR`` is one worker of that tiny cluster: it trains the small
model of :func:`tiny_model` on ``DIR/case.npz`` with ``train.distributed_fit`` and writes its
history and final weights to ``DIR/result<index>.npz``; then the same with a BatchNorm layer, its
weights (moving statistics included) to ``DIR/batchnorm<index>.npz``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300  # per cluster run: a hung collective must fail the test, not block CI
LR, PATIENCE, EPOCHS, BATCH = 0.5, 1, 8, 8  # a rate high enough that val loss turns and early stopping acts
CLASS_WEIGHT = {0: 1.0, 1: 2.5, 2: 0.5}


def free_ports(n: int) -> list[int]:
    """Ports the OS hands out now (held together so that they differ)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run_cluster(root: Path, commands: list[list[str]]) -> list[str]:
    """Run ``commands[i]`` as worker ``i`` of one cluster (cwd: the repo); return their logs.

    Each worker gets ``TF_CONFIG`` and its own ``TMPDIR`` (``root/tmp<i>``). Both must exit 0 within
    TIMEOUT_S; a worker that fails stops the other, which would wait for it for ever.
    """
    cluster = [f"127.0.0.1:{p}" for p in free_ports(len(commands))]
    procs, logs = [], [root / f"worker{i}.log" for i in range(len(commands))]
    for i, cmd in enumerate(commands):
        tf_config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}}
        (root / f"tmp{i}").mkdir(exist_ok=True)
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(root / f"tmp{i}"),
               "PYTHONPATH": str(REPO)}
        with logs[i].open("w") as log:
            procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    _wait(procs)
    texts = [log.read_text() for log in logs]
    tails = "\n".join(f"--- worker {i} (exit {p.returncode})\n{t[-3000:]}" for i, (p, t) in
                      enumerate(zip(procs, texts, strict=True)))
    assert [p.returncode for p in procs] == [0] * len(procs), tails
    return texts


def _wait(procs: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            time.sleep(5)  # let the other one report its side first
            break
        time.sleep(0.5)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def write_case(root: Path, seed: int = 1) -> None:
    """Data (37 train rows: the last batch of 8 is partial) and initial weights for :func:`tiny_model`.

    With seed 1, one process stops after epoch 5 and restores epoch 4's weights.
    """
    import keras

    keras.utils.set_random_seed(seed)  # the initial weights too: whether early stopping acts depends on them
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(49, 5)).astype(np.float32)
    y = (np.digitize(x[:, 0] + 0.5 * rng.normal(size=49), [-0.5, 0.5])).astype(np.int32)
    weights = tiny_model().get_weights()
    np.savez(root / "case.npz", *weights, x=x, y=y)


def tiny_model(batchnorm: bool = False):
    """Dense layers; without ``batchnorm`` none whose per-worker statistics (BatchNorm normalises by
    each worker's share of a batch) would keep two workers from matching one process step for step."""
    import keras

    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    if batchnorm:
        hidden = keras.layers.BatchNormalization(momentum=0.5)(hidden)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))


def case_data(root: Path, batchnorm: bool = False):
    """``(model, train_ds, val_ds)`` of the case: the model compiled as train.stages compiles it."""
    import keras
    import tensorflow as tf

    case = np.load(root / "case.npz")
    model = tiny_model(batchnorm)
    if not batchnorm:
        model.set_weights([case[f"arr_{i}"] for i in range(len(model.weights))])
    model.compile(optimizer=keras.optimizers.Adam(LR), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x, y = case["x"], case["y"]
    train = tf.data.Dataset.from_tensor_slices((x[:37], y[:37])).batch(BATCH)
    val = tf.data.Dataset.from_tensor_slices((x[37:], y[37:])).batch(BATCH)
    return model, train, val


def early_stopping():
    import keras

    return keras.callbacks.EarlyStopping(monitor="val_loss", patience=PATIENCE, restore_best_weights=True)


def _worker(root: Path) -> None:
    import tensorflow as tf

    from train import distributed_fit

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model, train, val = case_data(root)
    hist = distributed_fit.fit(model, train, val, strategy=strategy, epochs=EPOCHS, class_weight=CLASS_WEIGHT,
                               callbacks=[early_stopping()])
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    np.savez(root / f"result{index}.npz", *model.get_weights(),
             **{f"history_{k}": np.array(v) for k, v in hist.history.items()})
    with strategy.scope():
        model, train, val = case_data(root, batchnorm=True)
    distributed_fit.fit(model, train, val, strategy=strategy, epochs=2, class_weight=None, callbacks=[])
    np.savez(root / f"batchnorm{index}.npz", *model.get_weights())


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
