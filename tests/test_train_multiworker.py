"""``--strategy multi-worker`` for real: two worker processes on loopback form one cluster.

The training loop itself is checked against Keras's ``fit`` in one process (a tiny model, seconds);
whole runs (``python -m train`` on each worker) are checked against the run-directory contract.
Each worker of a whole run gets its own ``--out``: with one shared folder, anything the non-chief
wrote would be indistinguishable from the chief's files; this way it must stay absent.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.multiworker_support import CLASS_WEIGHT, EPOCHS, case_data, early_stopping, run_cluster, write_case
from train.rundir import FILES
from train.synth import generate

COMMON = ["--alpha", "0.35", "--image-size", "32", "--batch-size", "16", "--threads", "1", "--name", "mw"]


@pytest.mark.parametrize("tf_config, says", [
    ("not json", "JSONDecodeError"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}}', "KeyError: 'task'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "index 1 is not in"),
])
def test_a_bad_tf_config_is_refused_before_anything_is_written(tmp_path, monkeypatch, tf_config, says):
    from train.config import TrainConfig
    from train.errors import TrainError
    from train.pipeline import train

    monkeypatch.setenv("TF_CONFIG", tf_config)
    config = TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "runs"), strategy="multi-worker",
                         weights="none")
    with pytest.raises(TrainError, match=re.escape(says)):
        train(config)
    assert not (tmp_path / "runs").exists()


def test_two_workers_train_as_keras_fit_does_in_one_process(tmp_path):
    """Same loss, class weights, partial last batch, metrics, early stopping and restored weights."""
    write_case(tmp_path)
    worker = [sys.executable, "-m", "tests.multiworker_support", str(tmp_path)]
    run_cluster(tmp_path, [worker, worker])
    model, train, val = case_data(tmp_path)
    ref = model.fit(train, validation_data=val, epochs=EPOCHS, class_weight=CLASS_WEIGHT, shuffle=False,
                    verbose=0, callbacks=[early_stopping()]).history
    # The case stops early and restores an epoch before the last: both are exercised.
    assert len(ref["loss"]) < EPOCHS and np.argmin(ref["val_loss"]) < len(ref["loss"]) - 1
    chief, other = (np.load(tmp_path / f"result{i}.npz") for i in range(2))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        # Tolerances far above summation-order noise on any CPU, far below what a wrong loss scale,
        # global batch or missing reduction gives (each was seen to fail by orders of magnitude).
        np.testing.assert_allclose(chief[f"history_{key}"], ref[key], rtol=1e-4, atol=1e-5, err_msg=key)
    weights = [f"arr_{i}" for i in range(len(model.weights))]
    for name, w in zip(weights, model.get_weights(), strict=True):
        assert np.array_equal(chief[name], other[name])  # every worker holds the same model
        np.testing.assert_allclose(chief[name], w, rtol=1e-3, atol=1e-4)  # float sums in another order
    # With BatchNorm too: its moving statistics, updated by each worker from its share, are averaged.
    chief, other = (np.load(tmp_path / f"batchnorm{i}.npz") for i in range(2))
    assert len(chief.files) == 8 and all(np.array_equal(chief[k], other[k]) for k in chief.files)


def _progress(log: str) -> list[str]:
    """The stage lines (``[scratch] epoch 1/2 ...``, ``[recipe] ...``) without their timings."""
    return [re.sub(r"[\d.]+ s\b", "", ln) for ln in log.splitlines() if ln.startswith("[")]


def _whole_run(root: Path, args: list[str]) -> tuple[Path, list[str]]:
    cmd = [sys.executable, "-m", "train", *args, *COMMON, "--strategy", "multi-worker"]
    logs = run_cluster(root, [[*cmd, "--out", str(root / f"out{i}")] for i in range(2)])
    return root / "out0" / "mw", logs


def _check_whole_run(run: Path, root: Path, logs: list[str], stages: list[str]) -> None:
    """The chief's run meets the single-process contract; the non-chief left nothing behind."""
    import keras

    manifest = json.loads((run / "run.json").read_text())
    for key in ("keras_model", "saved_model", "labels", "metrics", "config", "history", "data_report"):
        assert (run / FILES[key]).exists(), key
    assert all((run / f).is_file() for f in FILES["splits"].values())
    assert (root / "out0" / "latest").resolve() == run.resolve()
    assert json.loads((run / "config.json").read_text())["strategy"] == "multi-worker"
    history = json.loads((run / "history.json").read_text())
    assert [h["stage"] for h in history] == stages
    for h in history:
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "best_epoch", "seconds"} <= set(h)
        assert 1 <= h["best_epoch"] <= len(h["val_loss"]) and all(np.isfinite(h["loss"]))
    # The saved model is the one evaluated: it reproduces the test confusion matrix of metrics.json.
    x, y = _test_split(run, manifest)
    pred = keras.models.load_model(run / "model.keras").predict(x, verbose=0).argmax(1)
    cm = np.zeros((2, 2), int)
    np.add.at(cm, (y, pred), 1)
    assert cm.tolist() == json.loads((run / "metrics.json").read_text())["test"]["confusion_matrix"]
    # The non-chief: nothing in its --out, no scratch copy left, the same figures at every step.
    assert not (root / "out1").exists()
    assert not list((root / "tmp1").glob("edgeflag-worker-*"))
    assert _progress(logs[0]) and _progress(logs[0]) == _progress(logs[1])
    assert "the chief writes the run" in logs[1]


def _test_split(run: Path, manifest: dict) -> tuple[np.ndarray, np.ndarray]:
    from runtime.contract import InputContract
    from runtime.image_io import read_image
    from runtime.preprocess import prepare_rgb

    rows = [ln.split("\t") for ln in (run / FILES["splits"]["test"]).read_text().splitlines()]
    contract = InputContract.from_dict(manifest["input"])
    x = np.stack([prepare_rgb(read_image(Path(manifest["data_dir"]) / p), contract) for p, _ in rows])
    return x.astype(np.float32), np.array([manifest["labels"].index(label) for _, label in rows])


def test_two_workers_train_a_whole_run_from_scratch(tmp_path):
    # 30-83 s on 2 cores shared with another job (median of 5: 51 s); the two-stage run below is slow.
    data = generate(tmp_path / "data", count=60, size=32, seed=3)
    run, logs = _whole_run(tmp_path, ["--data", str(data), "--weights", "none", "--epochs-scratch", "2"])
    _check_whole_run(run, tmp_path, logs, ["scratch"])


@pytest.mark.slow  # 56-68 s on 2 shared cores: four candidate heads, then fine-tuning
def test_two_workers_train_both_stages_from_a_weights_file(tmp_path, local_weights):
    data = generate(tmp_path / "data", count=60, size=32, seed=3)
    stages = ["--epochs-head", "2", "--epochs-finetune", "1"]
    run, logs = _whole_run(tmp_path, ["--data", str(data), "--weights", str(local_weights), *stages])
    _check_whole_run(run, tmp_path, logs, ["head", "finetune"])
    head = json.loads((run / "history.json").read_text())[0]
    assert head["recipe"]["searched"] and len(head["recipe"]["candidates"]) == 4  # every candidate ran
