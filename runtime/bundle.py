"""Read a model bundle (``bundle.json`` + ``labels.txt`` + artifacts) written by ``export``.

The bundle is the contract between export and the device: labels, the input contract,
per-artifact checksums, gate status and decision thresholds. Nothing is guessed here: a missing
or inconsistent field is a :class:`BundleError` that says how to fix it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from runtime.backends import open_backend
from runtime.backends.registry import resolve_backend
from runtime.contract import InputContract
from runtime.decision import Decider
from runtime.errors import BackendError, BundleError
from runtime.fsutil import sha256_file

SCHEMA_VERSION = 1

# Default pick when neither --precision nor a device profile says otherwise: fastest first
# on a CPU board (int8 TFLite beats fp32 with XNNPACK; benchmarks.int8_vs_fp32 measures by how much).
DEFAULT_PREFERENCE = ("tflite-int8", "tflite-dynamic", "tflite-fp16", "tflite-fp32",
                      "onnx-int8", "onnx-fp32", "onnx-fp16")


@dataclass(frozen=True)
class Artifact:
    """One artifact entry of ``bundle.json``."""

    name: str
    file: str
    format: str
    precision: str
    sha256: str
    size_bytes: int
    backends: tuple[str, ...]
    gate_status: str
    thresholds: dict[str, float]
    raw: dict = field(compare=False, repr=False, default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when the accuracy gate accepted this artifact."""
        return self.gate_status == "passed"

    @classmethod
    def from_dict(cls, d: dict) -> Artifact:
        try:
            return cls(name=d["name"], file=d["file"], format=d["format"],
                       precision=d["precision"], sha256=d["sha256"],
                       size_bytes=int(d["size_bytes"]), backends=tuple(d.get("backends", ())),
                       gate_status=d.get("gate", {}).get("status", "unknown"),
                       thresholds=dict(d.get("thresholds", {})), raw=d)
        except KeyError as exc:
            raise BundleError(f"bundle.json: artifact entry lacks field {exc}; re-run export") from exc


class Bundle:
    """A loaded bundle folder. Use :meth:`load`, then :meth:`select` and :meth:`open`."""

    def __init__(self, root: Path, meta: dict):
        self.root = root
        self.meta = meta
        self.labels: list[str] = list(meta["labels"])
        self.ok_label: str | None = meta["ok_label"]  # None: sorting by class (every class a label)
        self.contract = InputContract.from_dict(meta["input"])
        self.artifacts = [Artifact.from_dict(a) for a in meta.get("artifacts", [])]

    @classmethod
    def load(cls, root: str | Path) -> Bundle:
        """Load and validate ``root/bundle.json`` (a folder, or ``bundles/latest``)."""
        root = Path(root)
        path = root / "bundle.json"
        if not path.is_file():
            raise BundleError(f"{root}: not a bundle (no bundle.json). Expected the folder written "
                              "by `python -m export` (e.g. bundles/latest); run `make export` first")
        try:
            meta = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise BundleError(f"{path}: invalid JSON ({exc}); re-run export") from exc
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise BundleError(f"{path}: schema_version {meta.get('schema_version')!r}, this runtime "
                              f"reads {SCHEMA_VERSION}; re-export with a matching version")
        missing = [k for k in ("labels", "ok_label", "input", "artifacts") if k not in meta]
        if missing:
            raise BundleError(f"{path}: missing fields {missing}; re-run export")
        return cls(root, meta)

    @property
    def defect_labels(self) -> list[str]:
        """All labels except the ok class (all of them when sorting)."""
        return [c for c in self.labels if c != self.ok_label]

    def get(self, name: str) -> Artifact:
        """The artifact called ``name`` (e.g. ``tflite-int8``)."""
        for a in self.artifacts:
            if a.name == name:
                return a
        raise BundleError(f"no artifact {name!r} in {self.root}; it has "
                          f"{[a.name for a in self.artifacts]}")

    def select(self, precision: str | None = None, fmt: str | None = None,
               allow_rejected: bool = False, preference: tuple[str, ...] = DEFAULT_PREFERENCE,
               backend: str = "auto") -> Artifact:
        """Pick an artifact: gate-passed, matching ``precision``/``fmt``, runnable here."""
        names = [n for n in preference if any(a.name == n for a in self.artifacts)]
        names += [a.name for a in self.artifacts if a.name not in names]
        tried = []
        for a in (self.get(n) for n in names):
            if (precision and a.precision != precision) or (fmt and a.format != fmt):
                continue
            if not (a.passed or allow_rejected):
                tried.append(f"{a.name}: gate {a.gate_status}")
                continue
            try:
                resolve_backend(a.file, backend)
            except BackendError as exc:
                tried.append(f"{a.name}: {exc}")
                continue
            return a
        want = ", ".join(f"{k}={v}" for k, v in (("precision", precision), ("format", fmt)) if v)
        raise BundleError(f"no usable artifact in {self.root} ({want or 'any'}). Considered: "
                          f"{'; '.join(tried) or 'none matched'}. Fix: choose another --precision, "
                          "install the engine, or pass --allow-rejected to use a gate-rejected one")

    def verify(self, artifact: Artifact) -> Path:
        """Path of the artifact after checking its sha256 against ``bundle.json``."""
        path = self.root / artifact.file
        if not path.is_file():
            raise BundleError(f"{path}: artifact file missing; the bundle is incomplete, re-run export")
        actual = sha256_file(path)
        if actual != artifact.sha256:
            raise BundleError(f"{path}: sha256 mismatch (bundle.json says {artifact.sha256[:12]}…, "
                              f"file is {actual[:12]}…). The file was modified or replaced; "
                              "refusing to run it. Re-copy the bundle or re-run export")
        return path

    def open(self, artifact: Artifact, backend: str = "auto", threads: int | None = None,
             **options):
        """Verify then open ``artifact`` on a backend."""
        return open_backend(self.verify(artifact), backend=backend, threads=threads, **options)

    def decider(self, artifact: Artifact, overrides: dict[str, float] | None = None) -> Decider:
        """A :class:`Decider` with the artifact's thresholds, optionally overridden per class."""
        thresholds = {**artifact.thresholds, **(overrides or {})}
        unknown = set(overrides or {}) - set(self.defect_labels)
        if unknown:
            raise BundleError(f"threshold override for unknown classes {sorted(unknown)}; "
                              f"defect classes are {self.defect_labels}")
        return Decider(self.labels, self.ok_label, thresholds)
