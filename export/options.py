"""Format options: the values each format runs with, and refusing any option no chosen format takes.

A format names the options it takes when it is registered, by their place in :class:`ExportConfig`
(``"opset"``, ``"int8.calibration_size"``). There each option has its one default; a config file or
a flag sets it for every format that takes it; ``ExportConfig.options[<format>]`` overrides it for
one format. An option a format does not take is refused by name with a "did you mean" hint (as
Ultralytics' exporter does), so a typo never silently falls back to a default. Nothing here knows a
format or a precision by name: the formats' own declarations say it all.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from export.config import ExportConfig
from export.errors import OptionError
from export.registry import FormatSpec, get_format, list_formats
from runtime.hints import did_you_mean


def option_value(config: ExportConfig, path: str) -> Any:
    """The value at ``path`` (``"opset"``, ``"int8.calibration_size"``) in ``config``."""
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def resolve_settings(spec: FormatSpec, config: ExportConfig) -> dict[str, Any]:
    """The option values a format runs with: the config's, then its per-format overrides (validated)."""
    overrides = config.options.get(spec.name, {})
    _refuse_unknown(spec, overrides)
    settings = {}
    for name, path in spec.options.items():
        section, _, attr = path.rpartition(".")
        if section:  # a field of a settings dataclass: overridden through it, so that it validates the value
            settings[name] = getattr(_section_with_overrides(spec, config, section, overrides), attr)
        else:
            settings[name] = overrides.get(name, option_value(config, path))
    return settings


def _section_with_overrides(spec: FormatSpec, config: ExportConfig, section: str, overrides: dict) -> Any:
    """``config.<section>`` with the format's overrides of its fields applied."""
    given = {name: value for name, value in overrides.items() if spec.options[name] == f"{section}.{name}"}
    try:
        return replace(option_value(config, section), **given)
    except (TypeError, ValueError) as exc:
        raise OptionError(f"format {spec.name!r}: bad option value: {exc}") from exc


def _refuse_unknown(spec: FormatSpec, overrides: dict) -> None:
    for key in overrides:
        if key not in spec.options:
            others = [s.name for s in list_formats() if key in s.options]
            where = f" It is accepted by: {', '.join(others)}." if others else ""
            raise OptionError(f"format {spec.name!r} does not accept option {key!r}."
                              f"{did_you_mean(key, spec.options)}{where} {spec.name} accepts: "
                              f"{', '.join(spec.options) or 'no options'}. Fix: correct the name, or give "
                              f"it to a format that takes it (--option FORMAT.{key}=VALUE)")


def select_formats(config: ExportConfig) -> list[FormatSpec]:
    """The formats to run, validated, with every option checked against what they accept."""
    names = list(config.formats) if config.formats else [s.name for s in list_formats()]
    specs = [get_format(n.strip()) for n in dict.fromkeys(names)]
    for name in config.options:
        get_format(name)  # unknown format in per-format options: refuse with a suggestion
    _refuse_untaken(specs, config)
    for spec in specs:
        resolve_settings(spec, config)
    return specs


def _refuse_untaken(specs: list[FormatSpec], config: ExportConfig) -> None:
    """An option set away from its default that none of the selected formats takes is refused, not ignored."""
    default = ExportConfig()
    taken = {path for s in specs for path in s.options.values()}
    for path in dict.fromkeys(p for s in list_formats() for p in s.options.values()):
        value = option_value(config, path)
        if path in taken or value == option_value(default, path):
            continue
        name = path.rpartition(".")[2]
        users = [s.name for s in list_formats() if path in s.options.values()]
        raise OptionError(f"option {name!r} was set ({path} = {value!r}) but none of the selected "
                          f"formats ({', '.join(s.name for s in specs)}) accepts it; it applies to "
                          f"{', '.join(users)}. Fix: add one of those to --formats, or drop the option")
