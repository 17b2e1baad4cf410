"""The export-format registry: one function per format, one shared timing/logging/failure wrapper.

Formats are looked up by name (``tflite-int8``), never by position. Each declares, when it is
registered, the options it takes; :mod:`export.options` resolves and checks them from those
declarations alone, so adding a format, or letting one take an existing setting, touches only that
format's module.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export.errors import OptionError
from runtime.artifact_kinds import FORMAT_SUFFIXES, PRECISIONS
from runtime.hints import did_you_mean

log = logging.getLogger("export")


@dataclass(frozen=True)
class FormatSpec:
    """A registered format: its name, file, precision and the options it accepts.

    ``options`` maps each option's name (the key of a per-format override, ``calibration_size``) to
    its place in :class:`export.config.ExportConfig` (``int8.calibration_size``), where its default is.
    """

    name: str
    fmt: str
    precision: str
    options: Mapping[str, str] = field(hash=False)
    fn: Callable
    doc: str = ""

    @property
    def suffix(self) -> str:
        """File suffix, e.g. ``.tflite``."""
        return FORMAT_SUFFIXES[self.fmt]

    @property
    def filename(self) -> str:
        """Artifact file name inside the bundle, e.g. ``model_int8.tflite``."""
        return f"model_{self.precision}{self.suffix}"

    @property
    def backends(self) -> list[str]:
        """Runtime backends able to run this format."""
        from runtime.backends import backends_for_format

        return backends_for_format(self.fmt)


@dataclass
class FormatJob:
    """What a format function gets: where to write, resolved settings, the shared context."""

    spec: FormatSpec
    dest: Path
    settings: dict[str, Any]
    ctx: Any  # export.context.ExportContext (typed loosely to keep this module import-light)
    details: dict[str, Any] = field(default_factory=dict)  # what the format reports for bundle.json


@dataclass
class ExportResult:
    """Outcome of one format: the file written, or the error that stopped it."""

    spec: FormatSpec
    path: Path | None
    seconds: float
    settings: dict[str, Any]
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the artifact was written and verified."""
        return self.error is None


_FORMATS: dict[str, FormatSpec] = {}


def register_format(name: str, fmt: str, precision: str, options: tuple[str, ...] = ()):
    """Decorator registering ``fn(job: FormatJob) -> None`` (writes ``job.dest``) as format ``name``.

    ``options``: the :class:`export.config.ExportConfig` settings the format takes, by their place in
    it (``"opset"``, ``"int8.calibration_size"``); ``job.settings`` holds them under their last name.
    """
    if fmt not in FORMAT_SUFFIXES or precision not in PRECISIONS:
        raise ValueError(f"format {name!r}: {fmt}/{precision} is not an artifact kind a bundle can hold "
                         f"(formats {list(FORMAT_SUFFIXES)}, precisions {list(PRECISIONS)}); add it to "
                         "runtime/artifact_kinds.py first, so that the device can read it")
    taken = {path.rpartition(".")[2]: path for path in options}
    if len(taken) != len(options):
        raise ValueError(f"format {name!r}: two options share a name in {options}; a per-format "
                         "override could not tell them apart")

    def wrap(fn: Callable) -> Callable:
        doc = (fn.__doc__ or "").strip().splitlines()
        _FORMATS[name] = FormatSpec(name, fmt, precision, taken, fn, doc[0] if doc else "")
        return fn

    return wrap


def _load_builtin() -> None:
    # Importing registers the formats; converters are imported inside each function.
    from export import formats_onnx, formats_tflite  # noqa: F401


def list_formats() -> list[FormatSpec]:
    """All registered formats: TFLite first (the device default), then ONNX, each in registration order."""
    _load_builtin()
    order = list(FORMAT_SUFFIXES)
    return sorted(_FORMATS.values(), key=lambda s: order.index(s.fmt))


def get_format(name: str) -> FormatSpec:
    """The format called ``name``; an unknown name is an :class:`OptionError` with a suggestion."""
    _load_builtin()
    if name not in _FORMATS:
        raise OptionError(f"unknown export format {name!r}.{did_you_mean(name, _FORMATS)} "
                          f"Known formats: {', '.join(_FORMATS)} (see python -m export --list)")
    return _FORMATS[name]


def format_table() -> str:
    """The ``--list`` table: name, suffix, precision, backends, accepted options."""
    rows = [("name", "suffix", "precision", "backends", "options")]
    rows += [(s.name, s.suffix, s.precision, ",".join(s.backends), ", ".join(s.options) or "-")
             for s in list_formats()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def failure_cause(exc: BaseException) -> str:
    """A short, specific cause from a converter exception.

    TFLite's ConverterError buries the useful line ("'tfl.xxx' op is not supported in int8...")
    among MLIR locations; keep the ``error:`` lines without their location prefixes.
    """
    text = str(exc) or type(exc).__name__
    errors = [re.sub(r"^.*?error:\s*", "", ln).strip() for ln in text.splitlines() if "error:" in ln]
    lines = errors or [ln.strip() for ln in text.splitlines() if ln.strip()]
    cause = "; ".join(dict.fromkeys(lines[:3]))
    return f"{type(exc).__name__}: {cause[:600]}"


def run_format(spec: FormatSpec, ctx, dest: Path, settings: dict[str, Any]) -> ExportResult:
    """Run one format under the shared wrapper: time it, embed metadata, verify, log the size.

    Any exception becomes a recorded failure naming the format and the cause, so the other
    formats still run.
    """
    shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
    log.info("%s: exporting (%s)", spec.name, shown)
    start = time.perf_counter()
    job = FormatJob(spec, dest, settings, ctx)
    try:
        spec.fn(job)
        ctx.finish_artifact(spec, dest)
    except Exception as exc:  # noqa: BLE001 - any converter failure must not stop the others
        seconds = time.perf_counter() - start
        cause = failure_cause(exc)
        log.error("%s: FAILED after %.1f s: %s", spec.name, seconds, cause)
        log.debug("%s traceback", spec.name, exc_info=True)
        dest.unlink(missing_ok=True)
        return ExportResult(spec, None, seconds, settings, error=cause)
    seconds = time.perf_counter() - start
    log.info("%s: %s, %.1f KiB in %.1f s", spec.name, dest.name, dest.stat().st_size / 1024, seconds)
    return ExportResult(spec, dest, seconds, settings, details=job.details)
