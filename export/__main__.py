"""``python -m export``: parse flags, then call :func:`export.pipeline.export` (or list formats)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from runtime.errors import EdgeFlagError
from runtime.tf_logs import quiet_tensorflow

_EPILOG = """exit status: 0 bundle written and every artifact passed (or --keep-going with at least one
passing); 2 nothing written (bad run dir, bad option, unwritable --out...); 3 bundle written but some
artifact was rejected by the gate or failed to export (named on stderr, numbers in bundle.json).
Precedence: defaults < --config file (TOML/JSON, same layout as ExportConfig) < flags."""


def _takers(path: str) -> str:
    from export.registry import list_formats

    return ", ".join(s.name for s in list_formats() if path in s.options.values()) or "no format"


def _parser() -> argparse.ArgumentParser:
    from export.config import AGREEMENT_BOUNDS, ExportConfig
    from export.presets import CALIBRATION_METHODS
    from runtime.artifact_kinds import PRECISIONS, QUANTIZED_PRECISIONS

    d = ExportConfig()  # shown in --help only; flags default to None so a config file can win
    p = argparse.ArgumentParser(prog="python -m export", epilog=_EPILOG,
                                description="Turn a training run into a gated bundle of TFLite/ONNX "
                                "artifacts.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument

    def setting(flag: str, path: str, **kw) -> None:
        # dest = the setting's place in ExportConfig ("int8.calibration_size"): cli_values nests by it.
        kw.setdefault("metavar", None if "choices" in kw else path.rpartition(".")[2].upper())
        a(flag, dest=path, **kw)

    a("--list", action="store_true", help="print the table of export formats and exit")
    a("--run", help=f"run folder written by `python -m train` (default: {d.run})")
    a("--out", help="bundle folder (default: bundles/<run name>; bundles/latest points at it)")
    a("--formats", help="comma-separated format names (default: all; see --list)")
    a("--config", help="TOML or JSON file with ExportConfig settings")
    setting("--calibration-size", "int8.calibration_size", type=int,
            help=f"int8 calibration images from the train split (default: {d.int8.calibration_size}; "
                 f"taken by {_takers('int8.calibration_size')})")
    setting("--calibration-method", "int8.calibration_method", choices=CALIBRATION_METHODS,
            help=f"int8 calibration method (default: {d.int8.calibration_method}; "
                 f"taken by {_takers('int8.calibration_method')})")
    setting("--opset", "opset", type=int,
            help=f"ONNX opset (default: {d.opset}; taken by {_takers('opset')})")
    g = d.gate
    quantized = "/".join(QUANTIZED_PRECISIONS)
    floats = "/".join(p for p in PRECISIONS if p not in QUANTIZED_PRECISIONS)
    setting("--max-top1-drop", "gate.max_top1_drop", type=float,
            help=f"gate: allowed top-1 drop, points (default: {g.max_top1_drop})")
    setting("--max-recall-drop", "gate.max_recall_drop", type=float,
            help=f"gate: allowed per-class recall drop, points (default: {g.max_recall_drop})")
    setting("--min-agreement-fp", "gate.min_agreement_fp", type=float,
            help=f"gate: argmax agreement floor for {floats}, percent (default: {g.min_agreement_fp})")
    setting("--min-agreement-quant", "gate.min_agreement_quant", type=float,
            help=f"gate: agreement floor for {quantized}, percent (default: {g.min_agreement_quant})")
    setting("--tie-tolerance", "gate.tie_tolerance", type=float,
            help=f"gate: outputs within this of the reference's (every class) count as the same class; an "
                 f"argmax flip there is a float tie (default: {g.tie_tolerance})")
    setting("--agreement-bound", "gate.agreement_bound", choices=AGREEMENT_BOUNDS,
            help="gate: compare agreement with its floor by the point value, or by the lower end of its 95%% "
                 f"interval (stricter; needs hundreds of test images) (default: {g.agreement_bound})")
    a("--target-false-alarm-rate", type=float,
      help=f"false-alarm rate the val-chosen thresholds aim for (default: {d.target_false_alarm_rate})")
    a("--min-defect-recall", type=float,
      help="line target for the reference model: defects caught at the thresholds on test, a fraction; "
           f"below it the bundle says 'not fit for the line' (default: {d.min_defect_recall})")
    a("--max-false-alarm-rate", type=float,
      help="line target: good parts flagged at the thresholds on test, a fraction "
           f"(default: {d.max_false_alarm_rate})")
    a("--keep-going", action="store_true", default=None,
      help="exit 0 when some artifacts are rejected, as long as one passed (they stay marked in bundle.json)")
    a("--threads", type=int, help="threads per backend during evaluation (default: all cores)")
    a("--seed", type=int, help=f"calibration sampling seed (default: {d.seed})")
    a("--option", action="append", default=[], metavar="FORMAT.KEY=VALUE",
      help="per-format option, e.g. onnx-int8.calibration_method=entropy (repeatable)")
    a("-v", "--verbose", action="store_true",
      help="debug logging (converter tracebacks) and TensorFlow's own C++ logging")
    return p


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _options(pairs: list[str]) -> dict:
    from export.errors import OptionError

    out: dict[str, dict] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        fmt, dot, name = key.partition(".")
        if not (sep and dot and fmt and name):
            raise OptionError(f"--option {pair!r}: expected FORMAT.KEY=VALUE, "
                              "e.g. onnx-int8.calibration_size=64")
        out.setdefault(fmt, {})[name] = _value(value)
    return out


_NOT_SETTINGS = ("list", "config", "option", "verbose")


def cli_values(args: argparse.Namespace) -> dict:
    """Flags the user gave, in ExportConfig's nested layout (each flag's dest is its place there)."""
    values: dict = {}
    for dest, value in vars(args).items():
        if value is None or dest in _NOT_SETTINGS:
            continue
        section, _, name = dest.rpartition(".")
        (values.setdefault(section, {}) if section else values)[name] = value
    if args.option:
        values["options"] = _options(args.option)
    return values


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    quiet_tensorflow(args.verbose)  # before anything imports TensorFlow; the converter workers inherit it
    # Our logger at INFO; converters' own chatter (tf2onnx, absl) only from WARNING up.
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("export").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        from export.registry import format_table

        if args.list:
            print(format_table())
            return 0
        from export.config import config_from_dict, load_config_file
        from export.pipeline import export

        base = config_from_dict(load_config_file(args.config)) if args.config else None
        out = export(config_from_dict(cli_values(args), base))
    except EdgeFlagError as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    print(f"bundle written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
