"""Inference backends: ``open_backend(path, backend='auto', threads=None)``."""

from runtime.backends.base import Backend
from runtime.backends.registry import (
    backends_for_format,
    format_of,
    list_backends,
    open_backend,
    register_backend,
    resolve_backend,
)

__all__ = ["Backend", "backends_for_format", "format_of", "list_backends", "open_backend",
           "register_backend", "resolve_backend"]
