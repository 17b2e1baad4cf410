"""Backends registered by name; each imports its engine only when used."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtime.artifact_kinds import FORMAT_SUFFIXES
from runtime.errors import BackendError


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend: its class, the artifact formats it runs, and an install check."""

    name: str
    cls: type
    formats: tuple[str, ...]
    available: Callable[[], bool]


_REGISTRY: dict[str, BackendSpec] = {}


def register_backend(name: str, formats: tuple[str, ...], available: Callable[[], bool]):
    """Class decorator adding a backend to the registry under ``name``."""

    def wrap(cls):
        _REGISTRY[name] = BackendSpec(name, cls, formats, available)
        return cls

    return wrap


def list_backends() -> list[BackendSpec]:
    """All registered backends, installed or not."""
    _load_builtin()
    return list(_REGISTRY.values())


def backends_for_format(fmt: str) -> list[str]:
    """Names of the backends that can run an artifact format ('tflite', 'onnx')."""
    return [s.name for s in list_backends() if fmt in s.formats]


def format_of(path: str | Path) -> str:
    """Artifact format from the file suffix."""
    suffix = Path(path).suffix.lower()
    fmt = {s: f for f, s in FORMAT_SUFFIXES.items()}.get(suffix)
    if fmt is None:
        raise BackendError(f"{path}: unknown artifact type {suffix!r}; expected "
                           f"{' or '.join(FORMAT_SUFFIXES.values())}")
    return fmt


def resolve_backend(path: str | Path, backend: str = "auto") -> BackendSpec:
    """The backend to use for ``path``: the named one, or the first installed one for its format."""
    fmt = format_of(path)
    specs = {s.name: s for s in list_backends()}
    if backend != "auto":
        if backend not in specs:
            raise BackendError(f"unknown backend {backend!r}; choose from {sorted(specs)} or 'auto'")
        if fmt not in specs[backend].formats:
            raise BackendError(f"backend {backend!r} cannot run {fmt} files ({path}); "
                               f"use one of {backends_for_format(fmt)}")
        return specs[backend]
    for spec in specs.values():
        if fmt in spec.formats and spec.available():
            return spec
    raise BackendError(f"no installed engine runs {fmt} files ({path}). Fix: pip install "
                       + ("ai-edge-litert" if fmt == "tflite" else "onnxruntime"))


def open_backend(path: str | Path, backend: str = "auto", threads: int | None = None, **options):
    """Open ``path`` on a backend (``auto``: whatever is installed for the file's format)."""
    spec = resolve_backend(path, backend)
    return spec.cls(path, threads=threads, **options)


def _load_builtin() -> None:
    # Importing the modules registers them; their engines are imported lazily inside.
    from runtime.backends import litert, onnxrt  # noqa: F401
