"""Read and validate a training run directory (contract 1), so export never has to guess."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from export.errors import RunDirError
from runtime.contract import InputContract
from runtime.split_file import read_split_file

SPLITS = ("train", "val", "test")
_TRAIN_HINT = "train first: python -m train --data DIR (writes runs/<name> and runs/latest)"


@dataclass(frozen=True)
class RunInfo:
    """A validated run: its manifest, labels, input contract and file locations."""

    root: Path
    manifest: dict
    labels: list[str]
    ok_label: str | None  # None: sorting by class, no good class
    contract: InputContract
    data_dir: Path

    @property
    def name(self) -> str:
        """The run's name (``run.json`` "name", else the folder name)."""
        return str(self.manifest.get("name") or self.root.name)

    def file(self, key: str) -> Path:
        """Path of a file listed in ``run.json`` "files" (``keras_model``, ``saved_model``...)."""
        return self.root / self.manifest["files"][key]

    def split(self, name: str) -> list[tuple[Path, str]]:
        """``(absolute image path, label)`` for every line of a split file."""
        path = self.root / self.manifest["files"]["splits"][name]
        rows = read_split_file(path, RunDirError, self.labels)
        return [(self.data_dir / rel, label) for rel, label in rows]

    def nonempty_split(self, name: str) -> list[tuple[Path, str]]:
        """Like :meth:`split`, but an empty split is an error that says why it matters."""
        items = self.split(name)
        if not items:
            why = {"test": "the accuracy gate evaluates every artifact on it",
                   "val": "decision thresholds are chosen on it",
                   "train": "int8 calibration images are drawn from it"}[name]
            raise RunDirError(f"{self.root}: the {name} split is empty, but {why}. Fix: re-train with "
                              "more images per class so that every split gets some")
        return items


def _read_manifest(root: Path) -> dict:
    path = root / "run.json"
    if not path.is_file():
        raise RunDirError(f"{root}: incomplete run directory (no run.json). Training did not finish, or "
                          f"this is not a run folder; {_TRAIN_HINT}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}: invalid JSON ({exc}); re-run training") from exc
    missing = [k for k in ("labels", "ok_label", "input", "data_dir", "files") if k not in manifest]
    if missing:
        raise RunDirError(f"{path}: missing fields {missing}; this run was written by an incompatible "
                          "version of train; re-run training")
    return manifest


def _check_files(root: Path, files: dict) -> None:
    splits = files.get("splits") or {}
    missing_splits = [s for s in SPLITS if not (s in splits and (root / splits[s]).is_file())]
    if missing_splits:
        raise RunDirError(f"{root}: run has no split lists for {missing_splits} (expected "
                          "splits/<name>.txt). Export evaluates on the run's own held-out images; "
                          "re-run training to write them")
    needed = {k: files.get(k) for k in ("keras_model", "saved_model", "labels")}
    absent = [f"{k} ({v})" for k, v in needed.items() if not v or not (root / v).exists()]
    if absent:
        raise RunDirError(f"{root}: incomplete run directory, missing {', '.join(absent)}. "
                          f"Training was interrupted or files were deleted; re-run training")


def _check_labels(root: Path, manifest: dict) -> None:
    labels = list(manifest["labels"])
    text = (root / manifest["files"]["labels"]).read_text()
    on_disk = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if on_disk != labels:
        raise RunDirError(f"{root}: labels.txt {on_disk} disagrees with run.json labels {labels}; "
                          "the run was edited by hand, re-run training")
    if manifest["ok_label"] is not None and manifest["ok_label"] not in labels:  # None: sorting by class
        raise RunDirError(f"{root}: ok_label {manifest['ok_label']!r} is not one of the labels {labels}")


def load_run(path: str | Path) -> RunInfo:
    """Validate ``path`` (a run folder or ``runs/latest``) and return its :class:`RunInfo`."""
    given = Path(path)
    if not given.exists():
        raise RunDirError(f"{given}: no such run directory. Expected a folder written by training; "
                          f"{_TRAIN_HINT}")
    root = given.resolve()
    if not root.is_dir():
        raise RunDirError(f"{given}: not a directory; pass the run folder, e.g. runs/latest")
    manifest = _read_manifest(root)
    _check_files(root, manifest["files"])
    _check_labels(root, manifest)
    try:
        contract = InputContract.from_dict(manifest["input"])
    except (TypeError, ValueError) as exc:
        raise RunDirError(f"{root}/run.json: bad input contract: {exc}; re-run training") from exc
    data_dir = Path(manifest["data_dir"])
    if not data_dir.is_dir():
        raise RunDirError(f"{root}: the run's images are gone (data_dir {data_dir} does not exist). The gate "
                          "and calibration need them: restore the folder or re-run training on its new place")
    return RunInfo(root, manifest, list(manifest["labels"]), manifest["ok_label"], contract, data_dir)
