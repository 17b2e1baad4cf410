"""The run directory: file names, the ``run.json`` manifest, and ``runs/latest``.

``run.json`` is written last: a run folder without it is incomplete and ``export`` refuses it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from runtime.contract import InputContract
from runtime.fsutil import atomic_write_json, update_symlink
from runtime.versions import package_versions
from train.config import TrainConfig
from train.errors import TrainError

SCHEMA_VERSION = 1
FILES = {
    "keras_model": "model.keras",
    "saved_model": "saved_model",
    "labels": "labels.txt",
    "splits": {"train": "splits/train.txt", "val": "splits/val.txt", "test": "splits/test.txt"},
    "metrics": "metrics.json",
    "config": "config.json",
    "data_report": "data_report.json",
    "history": "history.json",
    "plots": {"training_curves": "plots/training_curves.png",
              "confusion_matrix": "plots/confusion_matrix.png"},
}
_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "opencv-python-headless")


def run_name(config: TrainConfig) -> str:
    """``config.name``, or ``<data folder name>-<UTC time>``."""
    if config.name:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", config.name) or config.name == "latest":
            raise TrainError(f"run name {config.name!r} must be letters, digits, '.', '_' or '-' (and not "
                             "'latest'); pass another --name")
        return config.name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(config.data).resolve().name) or "run"
    return f"{stem}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def versions() -> dict:
    """Versions of Python and the packages that determine the model."""
    return package_versions(_PACKAGES, python=True)


def write_manifest(run_dir: Path, *, config: TrainConfig, labels: list[str], ok_label: str,
                   contract: InputContract, data_dir: Path, weights: dict, dataset_fingerprint: str) -> Path:
    """Write ``run.json`` (last) and point ``<out>/latest`` at this run."""
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": run_dir.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_dir": str(data_dir),
        "labels": labels,
        "ok_label": ok_label,
        "input": contract.to_dict(),
        "backbone": config.backbone,
        "alpha": config.alpha,
        "weights": weights,
        "config_hash": config.hash(),
        "dataset_fingerprint": dataset_fingerprint,
        "versions": versions(),
        "files": FILES,
    }
    atomic_write_json(run_dir / "run.json", manifest)
    update_symlink(run_dir.parent / "latest", run_dir)
    return run_dir / "run.json"
