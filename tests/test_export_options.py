"""Export CLI and registry: --list, refused options with suggestions, config precedence (no TF)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields, is_dataclass, replace
from pathlib import Path

import pytest

from export.__main__ import _parser, cli_values, main
from export.config import ExportConfig, config_from_dict, load_config_file
from export.errors import OptionError
from export.options import option_value, resolve_settings, select_formats
from export.registry import failure_cause, get_format, list_formats, register_format
from runtime.artifact_kinds import FORMAT_SUFFIXES
from runtime.bundle import DEFAULT_PREFERENCE

REPO = Path(__file__).resolve().parents[1]


def test_registry_lists_tflite_first_with_one_file_per_format():
    specs = list_formats()
    kinds = [s.fmt for s in specs]
    assert kinds == sorted(kinds, key=list(FORMAT_SUFFIXES).index)  # the device default first
    assert len({s.filename for s in specs}) == len(specs) == len({s.name for s in specs})
    assert {s.name: s.filename for s in specs}["tflite-int8"] == "model_int8.tflite"
    assert {s.name: s.backends for s in specs}["onnx-fp16"] == ["onnxruntime"]


def test_the_device_preference_ranks_every_registered_format():
    # runtime cannot import export, so its default pick order is written out; it must not drift.
    assert sorted(DEFAULT_PREFERENCE) == sorted(s.name for s in list_formats())


def test_a_format_of_a_kind_no_bundle_can_hold_is_refused_at_registration():
    with pytest.raises(ValueError, match="artifact_kinds"):
        register_format("test-int4", "tflite", "int4")


def test_list_prints_table_with_every_format_and_its_options(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["name", "suffix", "precision", "backends", "options"]
    for spec in list_formats():
        assert spec.name in out
    int8_row = next(ln for ln in out.splitlines() if ln.startswith("onnx-int8"))
    assert "calibration_method" in int8_row and "litert" not in int8_row


def test_list_does_not_import_tensorflow():
    code = ("import sys; from export.__main__ import main; main(['--list']); "
            "heavy = [m for m in ('tensorflow', 'keras', 'tf2onnx', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_unknown_format_is_refused_with_suggestion(fake_run, capsys):
    assert main(["--run", str(fake_run), "--formats", "tflite-int9"]) == 2
    err = capsys.readouterr().err
    assert "unknown export format 'tflite-int9'" in err and "Did you mean 'tflite-int8'" in err


def test_misspelled_format_option_is_refused_with_suggestion(fake_run, capsys):
    rc = main(["--run", str(fake_run), "--formats", "onnx-int8", "--option", "onnx-int8.calibraton_size=8"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "does not accept option 'calibraton_size'" in err and "Did you mean 'calibration_size'" in err


def test_option_of_another_format_names_where_it_belongs():
    config = ExportConfig(options={"tflite-int8": {"calibration_method": "entropy"}})
    with pytest.raises(OptionError, match="accepted by: onnx-int8"):
        resolve_settings(get_format("tflite-int8"), config)


def test_global_option_that_no_selected_format_accepts_is_refused(fake_run, capsys):
    rc = main(["--run", str(fake_run), "--formats", "tflite-int8,tflite-fp32",
               "--calibration-method", "entropy"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "'calibration_method'" in err and "applies to onnx-int8" in err


def test_bad_option_value_is_refused():
    config = ExportConfig(options={"onnx-int8": {"calibration_method": "kl"}})
    with pytest.raises(OptionError, match="calibration_method must be one of"):
        select_formats(replace(config, formats=("onnx-int8",)))


def test_settings_come_from_presets_then_per_format_overrides():
    overrides = {"onnx-int8": {"calibration_method": "entropy", "reduce_range": "none"}}
    config = config_from_dict({"int8": {"calibration_size": 64}, "opset": 18, "options": overrides})
    onnx_int8 = resolve_settings(get_format("onnx-int8"), config)
    assert onnx_int8 == {"opset": 18, "calibration_size": 64, "calibration_method": "entropy",
                         "per_channel": True, "reduce_range": "none", "float_fallback": "auto",
                         "bias_correction": "auto"}
    tflite_int8 = resolve_settings(get_format("tflite-int8"), config)
    assert tflite_int8 == {"calibration_size": 64, "float_fallback": "auto", "bias_correction": "auto",
                           "activation_ranges": "auto"}
    dynamic = resolve_settings(get_format("tflite-dynamic"), config)
    assert dynamic == {"calibration_size": 64, "bias_correction": "auto"}
    assert resolve_settings(get_format("tflite-fp32"), config) == {}


def test_every_declared_option_has_a_default_and_every_preset_field_a_format():
    default = ExportConfig()
    declared = {path for s in list_formats() for path in s.options.values()}
    for path in declared:
        option_value(default, path)  # a format naming a setting ExportConfig lacks fails here
    # The gate's limits apply to every artifact, not through a format's options.
    sections = [f.name for f in fields(ExportConfig)
                if is_dataclass(getattr(default, f.name)) and f.name != "gate"]
    untaken = [f"{sec}.{f.name}" for sec in sections for f in fields(getattr(default, sec))
               if f"{sec}.{f.name}" not in declared]
    assert not untaken, f"settings no format takes (dead, or a format forgot to declare them): {untaken}"


def test_two_options_with_one_name_are_refused_at_registration():
    with pytest.raises(ValueError, match="share a name"):
        register_format("test-twice", "onnx", "fp32", options=("int8.per_channel", "fp16.per_channel"))


def test_precedence_defaults_then_file_then_flags(tmp_path):
    file = tmp_path / "export.toml"
    file.write_text('formats = ["tflite-int8"]\ntarget_false_alarm_rate = 0.05\n'
                    '[int8]\ncalibration_size = 64\n[gate]\nmax_top1_drop = 2.0\n')
    args = _parser().parse_args(["--calibration-size", "32", "--min-agreement-quant", "97"])
    config = config_from_dict(cli_values(args), config_from_dict(load_config_file(file)))
    assert config.int8.calibration_size == 32  # flag beats file
    assert config.gate.max_top1_drop == 2.0  # file beats default
    assert config.gate.min_agreement_quant == 97.0
    assert config.formats == ("tflite-int8",) and config.target_false_alarm_rate == 0.05
    assert config.gate.max_recall_drop == ExportConfig().gate.max_recall_drop  # default kept
    json.dumps(config.to_dict())  # the resolved config is JSON-ready (saved in the bundle)


def test_unknown_config_key_is_refused_with_suggestion(tmp_path):
    file = tmp_path / "export.json"
    file.write_text(json.dumps({"int8": {"calibraton_size": 10}}))
    with pytest.raises(OptionError, match="Did you mean 'calibration_size'"):
        config_from_dict(load_config_file(file))


def test_failure_cause_keeps_the_converter_error_lines():
    text = ("ConverterError: Could not translate MLIR to FlatBuffer.\n"
            "<unknown>:0: error: loc(fused[\"Cumsum:\", \"model/cumsum\"]): 'tfl.cumsum' op is neither "
            "a custom op nor a flex op\n<unknown>:0: note: see current operation: ...")
    cause = failure_cause(RuntimeError(text))
    assert cause.startswith("RuntimeError: ") and "'tfl.cumsum' op is neither a custom op" in cause
    assert "model/cumsum" in cause  # the location names the layer: keep it
    assert "<unknown>" not in cause and "note:" not in cause
