"""The export-format registry: one function per format, one shared timing/logging/failure wrapper.

Formats are looked up by name (``tflite-int8``), never by position. Each declares the options it
accepts; anything else is refused by name with a "did you mean" hint (as Ultralytics' exporter
does), so a typo never silently falls back to a default.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from export.errors import OptionError
from runtime.hints import did_you_mean

log = logging.getLogger("export")

SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx"}


@dataclass(frozen=True)
class FormatSpec:
    """A registered format: its name, file, precision and the options it accepts."""

    name: str
    fmt: str
    precision: str
    options: tuple[str, ...]
    fn: Callable
    doc: str = ""

    @property
    def suffix(self) -> str:
        """File suffix, e.g. ``.tflite``."""
        return SUFFIXES[self.fmt]

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


@dataclass
class ExportResult:
    """Outcome of one format: the file written, or the error that stopped it."""

    spec: FormatSpec
    path: Path | None
    seconds: float
    settings: dict[str, Any]
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the artifact was written and verified."""
        return self.error is None


_FORMATS: dict[str, FormatSpec] = {}


def register_format(name: str, fmt: str, precision: str, options: tuple[str, ...] = ()):
    """Decorator registering ``fn(job: FormatJob) -> None`` (writes ``job.dest``) as format ``name``."""

    def wrap(fn: Callable) -> Callable:
        doc = (fn.__doc__ or "").strip().splitlines()
        _FORMATS[name] = FormatSpec(name, fmt, precision, tuple(options), fn, doc[0] if doc else "")
        return fn

    return wrap


def _load_builtin() -> None:
    # Importing registers the formats; converters are imported inside each function.
    from export import formats_onnx, formats_tflite  # noqa: F401


def list_formats() -> list[FormatSpec]:
    """All registered formats: TFLite first (the device default), then ONNX, each in registration order."""
    _load_builtin()
    order = list(SUFFIXES)
    return sorted(_FORMATS.values(), key=lambda s: order.index(s.fmt) if s.fmt in order else len(order))


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
    try:
        spec.fn(FormatJob(spec, dest, settings, ctx))
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
    return ExportResult(spec, dest, seconds, settings)


def _preset_for(spec: FormatSpec, config) -> object | None:
    return {"int8": config.int8, "fp16": config.fp16}.get(spec.precision)


def resolve_settings(spec: FormatSpec, config) -> dict[str, Any]:
    """The option values a format runs with: presets/config, then its per-format overrides."""
    overrides = dict(config.options.get(spec.name, {}))
    for key in overrides:
        if key not in spec.options:
            others = [s.name for s in list_formats() if key in s.options]
            where = f" It is accepted by: {', '.join(others)}." if others else ""
            raise OptionError(f"format {spec.name!r} does not accept option {key!r}."
                              f"{did_you_mean(key, spec.options)}{where} {spec.name} accepts: "
                              f"{', '.join(spec.options) or 'no options'}")
    preset = _preset_for(spec, config)
    if preset is not None:
        names = {f.name for f in fields(preset)}
        try:
            preset = replace(preset, **{k: v for k, v in overrides.items() if k in names})
        except (TypeError, ValueError) as exc:
            raise OptionError(f"format {spec.name!r}: bad option value: {exc}") from exc
    settings = {}
    for key in spec.options:
        if preset is not None and hasattr(preset, key):  # includes the validated overrides
            settings[key] = getattr(preset, key)
        elif key in overrides:
            settings[key] = overrides[key]
        else:
            settings[key] = getattr(config, key)
    return settings


def select_formats(config) -> list[FormatSpec]:
    """The formats to run, validated, with every option checked against what they accept."""
    names = list(config.formats) if config.formats else [s.name for s in list_formats()]
    specs = [get_format(n.strip()) for n in dict.fromkeys(names)]
    for name in config.options:
        get_format(name)  # unknown format in per-format options: refuse with a suggestion
    _check_global_options(specs, config)
    for spec in specs:
        resolve_settings(spec, config)
    return specs


def _check_global_options(specs: list[FormatSpec], config) -> None:
    """A non-default global option that no selected format accepts is refused, not ignored."""
    from export.config import ExportConfig

    default = ExportConfig()
    changed = [f.name for group in ("int8", "fp16") for f in fields(getattr(config, group))
               if getattr(getattr(config, group), f.name) != getattr(getattr(default, group), f.name)]
    changed += ["opset"] if config.opset != default.opset else []
    accepted = {o for s in specs for o in s.options}
    for key in changed:
        if key not in accepted:
            users = [s.name for s in list_formats() if key in s.options]
            raise OptionError(f"option {key!r} was set but none of the selected formats "
                              f"({', '.join(s.name for s in specs)}) accepts it; it applies to "
                              f"{', '.join(users) or 'no format'}. Add one of those to --formats or drop it")
