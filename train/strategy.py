"""Scaling past one device with TensorFlow's own engine (``tf.distribute``).

- ``default``: the current device (one CPU or GPU); what tests and most users run.
- ``mirrored``: synchronous data parallelism over all local GPUs (``MirroredStrategy``);
  ``batch_size`` is the global batch, split across replicas.
- ``multi-worker``: the same over several machines (``MultiWorkerMirroredStrategy``). Start the
  same command on every machine with ``TF_CONFIG`` describing the cluster and this worker's index,
  e.g. ``TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
  "task": {"type": "worker", "index": 0}}'``; worker 0 (the chief) writes the run directory.
  Keras 3's ``fit`` fails under this strategy, so training there goes through train.distributed_fit.
"""

from __future__ import annotations

import json
import os
from typing import Any

from train.errors import TrainError

_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\'')


def get_strategy(name: str) -> Any:
    """The ``tf.distribute`` strategy for ``name`` (default | mirrored | multi-worker).

    Call it before anything runs a TensorFlow op: ``MultiWorkerMirroredStrategy`` sets up the
    collective ops as the runtime starts, and refuses once it has started.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        check_cluster(name)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as exc:  # "Collective ops must be configured at program startup"
            raise TrainError(f"--strategy multi-worker: {exc}. TensorFlow already ran in this process; "
                             "start each worker as a fresh process (`python -m train ...`)") from exc
    raise TrainError(f"unknown strategy {name!r}; choose default, mirrored or multi-worker")


def check_cluster(name: str) -> None:
    """For ``multi-worker``: a :class:`TrainError` unless ``TF_CONFIG`` describes a cluster and this task."""
    if name != "multi-worker":
        return
    raw = os.environ.get("TF_CONFIG")
    if raw is None:
        raise TrainError("--strategy multi-worker needs the TF_CONFIG environment variable (cluster "
                         f"addresses and this worker's index), e.g. {_EXAMPLE}; see `python -m train "
                         "--help`, or use --strategy default/mirrored on one machine")
    problem = _tf_config_problem(raw)
    if problem:
        raise TrainError(f"TF_CONFIG {raw!r} does not describe a cluster ({problem}); expected JSON like "
                         f"{_EXAMPLE}: the same worker list on every machine, each with its own index")


def _tf_config_problem(raw: str) -> str | None:
    try:
        tf_config = json.loads(raw)
        task = tf_config["task"]
        members, index = tf_config["cluster"][task["type"]], int(task["index"])
        if not 0 <= index < len(members):
            return f"task index {index} is not in the {task['type']} list of {len(members)}"
    except (ValueError, KeyError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


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
