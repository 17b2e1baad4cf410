"""Export settings: every default defined once, here.

Precedence: these defaults < a config file (JSON or TOML, same nesting as :class:`ExportConfig`)
< command-line flags. The resolved config is saved in the bundle as ``export_config.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from export.errors import OptionError
from export.presets import Float16Preset, Int8Preset
from runtime import configfile
from runtime.artifact_kinds import QUANTIZED_PRECISIONS
from runtime.decision import DEFAULT_TARGET_FALSE_ALARM_RATE
from runtime.fitness import DEFAULT_MAX_FALSE_ALARM_RATE, DEFAULT_MIN_DEFECT_RECALL, LineTargets

AGREEMENT_BOUNDS = ("point", "lower")


@dataclass(frozen=True)
class GatePolicy:
    """Accuracy gate limits, in percentage points / percent against the Keras reference.

    Quantized artifacts (``QUANTIZED_PRECISIONS``: int8, dynamic) get the looser agreement floor: a
    few borderline images flipping is the expected price of 8-bit numerics, a wrong graph is not.

    ``tie_tolerance``: on an image where every class probability of the artifact is within this of
    the reference's, the two outputs are the same numbers up to float rounding, so the artifact is
    credited with the reference's class; otherwise an exact tie (a model that cannot tell two classes
    apart on that image) would be "won" by whichever class the CPU's kernels round up.

    ``agreement_bound``: ``point`` compares the measured agreement with its floor (default);
    ``lower`` compares the lower end of its 95% interval, so a pass says the floor holds with 95%
    confidence; even at full agreement that takes 765 test images for a 99.5% floor, 189 for 98%.
    Agreement bounds the drops too: top-1 or a recall cannot drop more than the images that flipped.
    """

    max_top1_drop: float = 1.0
    max_recall_drop: float = 1.0
    min_agreement_fp: float = 99.5
    min_agreement_quant: float = 98.0
    tie_tolerance: float = 1e-4
    agreement_bound: str = "point"

    def __post_init__(self) -> None:
        if self.agreement_bound not in AGREEMENT_BOUNDS:
            raise ValueError(f"agreement_bound must be one of {list(AGREEMENT_BOUNDS)}, "
                             f"got {self.agreement_bound!r}")
        if not 0 <= self.tie_tolerance < 0.5:
            raise ValueError(f"tie_tolerance must be in [0, 0.5) (a probability difference), "
                             f"got {self.tie_tolerance}")

    def min_agreement(self, precision: str) -> float:
        """Agreement floor (percent) for an artifact precision."""
        return self.min_agreement_quant if precision in QUANTIZED_PRECISIONS else self.min_agreement_fp


@dataclass(frozen=True)
class ExportConfig:
    """Everything ``export`` needs. ``formats=None`` means every registered format.

    ``int8``, ``fp16`` and ``opset`` apply to every selected format that takes them (formats declare
    theirs, see ``python -m export --list``); setting one that no selected format takes is an error.
    ``options`` holds per-format overrides, e.g. ``{"onnx-int8": {"calibration_method": "entropy"}}``;
    a format refuses options it does not accept.
    """

    run: str = "runs/latest"
    out: str | None = None  # default: bundles/<run name>
    formats: tuple[str, ...] | None = None
    int8: Int8Preset = field(default_factory=Int8Preset)
    fp16: Float16Preset = field(default_factory=Float16Preset)
    opset: int = 17
    gate: GatePolicy = field(default_factory=GatePolicy)
    target_false_alarm_rate: float = DEFAULT_TARGET_FALSE_ALARM_RATE
    # Line targets the reference model itself is judged against (runtime.fitness), at the thresholds.
    min_defect_recall: float = DEFAULT_MIN_DEFECT_RECALL
    max_false_alarm_rate: float = DEFAULT_MAX_FALSE_ALARM_RATE
    keep_going: bool = False
    threads: int | None = None  # evaluation threads per backend; None = all cores
    seed: int = 0  # calibration image sampling
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.line_targets()
        except ValueError as exc:
            raise OptionError(f"{exc}; e.g. --min-defect-recall 0.95 --max-false-alarm-rate 0.05") from None

    def line_targets(self) -> LineTargets:
        """The line targets: the reference is judged against them, and thresholds lowered to meet recall."""
        return LineTargets(self.min_defect_recall, self.max_false_alarm_rate)

    def to_dict(self) -> dict:
        """JSON-ready resolved config."""
        d = asdict(self)
        d["formats"] = list(self.formats) if self.formats is not None else None
        return d


def _check_keys(given: dict, allowed: list[str], where: str) -> None:
    configfile.check_keys(given, allowed, where, OptionError)


def config_from_dict(values: dict, base: ExportConfig | None = None) -> ExportConfig:
    """Apply a nested dict (config-file layout) on top of ``base`` (default: the defaults)."""
    base = base or ExportConfig()
    _check_keys(values, [f.name for f in fields(ExportConfig)], "export config")
    kw: dict[str, Any] = {}
    for key, value in values.items():
        current = getattr(base, key)
        if is_dataclass(current):  # a table of its own: [int8], [fp16], [gate]
            if not isinstance(value, dict):
                raise OptionError(f"export config: {key!r} must be a table/object, got {value!r}")
            _check_keys(value, [f.name for f in fields(current)], f"export config [{key}]")
            try:
                kw[key] = replace(current, **value)
            except ValueError as exc:
                raise OptionError(f"export config [{key}]: {exc}") from exc
        elif key == "formats" and value is not None:
            kw[key] = tuple(value.split(",") if isinstance(value, str) else value)
        elif key == "options":
            merged = {k: dict(v) for k, v in base.options.items()}
            for fmt, opts in value.items():
                merged.setdefault(fmt, {}).update(opts)
            kw[key] = merged
        else:
            kw[key] = value
    return replace(base, **kw)


def load_config_file(path: str | Path) -> dict:
    """Read a JSON or TOML config file into a nested dict."""
    return configfile.read_config_file(path, OptionError)
