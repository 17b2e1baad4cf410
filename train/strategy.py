"""Scaling past one device with TensorFlow's own engine (``tf.distribute``).

- ``default``: the current device (one CPU or GPU); what tests and most users run.
- ``mirrored``: synchronous data parallelism over all local GPUs (``MirroredStrategy``);
  ``batch_size`` is the global batch, split across replicas.
- ``multi-worker``: the same over several machines (``MultiWorkerMirroredStrategy``). Start the
  same command on every machine with ``TF_CONFIG`` describing the cluster and this worker's index,
  e.g. ``TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
  "task": {"type": "worker", "index": 0}}'``; worker 0 (the chief) writes the run directory.
"""

from __future__ import annotations

import json
import os
from typing import Any

from train.errors import TrainError


def get_strategy(name: str) -> Any:
    """The ``tf.distribute`` strategy for ``name`` (default | mirrored | multi-worker)."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise TrainError("--strategy multi-worker needs the TF_CONFIG environment variable (cluster "
                             "addresses and this worker's index); see `python -m train --help`, or use "
                             "--strategy default/mirrored on one machine")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainError(f"unknown strategy {name!r}; choose default, mirrored or multi-worker")


def is_multi_worker(strategy: Any) -> bool:
    """True for a ``MultiWorkerMirroredStrategy``, where Keras's ``fit`` fails (see train.distributed_fit)."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief() -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster (only the chief writes)."""
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except ValueError:
        return True
    task = tf_config.get("task", {})
    if task.get("type") == "chief":
        return True
    has_chief = "chief" in tf_config.get("cluster", {})
    return task.get("type", "worker") == "worker" and not has_chief and int(task.get("index", 0)) == 0
