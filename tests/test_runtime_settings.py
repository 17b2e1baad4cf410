"""Camera settings: one set of defaults, layer precedence, device profiles, install recipes, service."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.camera import build_parser, resolve_args
from runtime.profile import PROFILE_DIR, list_profiles, load_profile
from runtime.settings import CameraConfig, ConfigError, read_config_file, resolve

REPO = Path(__file__).resolve().parents[1]
BOARDS = ["desktop", "generic-cpu", "jetson-nano", "jetson-orin-nano", "pi4", "pi5"]


def parse(*argv: str):
    return resolve_args(vars(build_parser().parse_args(list(argv))))


def test_flags_not_given_leave_the_defaults():
    config, profile = parse()
    assert config == CameraConfig() and profile is None
    assert (config.k, config.n, config.events, config.snapshots) == (3, 5, "events/events.jsonl",
                                                                     "events/snapshots")


def test_precedence_defaults_profile_config_file_flags(tmp_path):
    cfg = tmp_path / "line3.toml"
    cfg.write_text('[camera]\nthreads = 2\nk = 2\nn = 4\nsource = "/dev/video2"\n')
    config, profile = parse("--profile", "pi5", "--config", str(cfg), "--k", "4", "--n", "6")
    assert profile.endswith("pi5.toml")
    assert config.precision == "int8" and config.format == "tflite"  # from the profile
    assert config.source == "/dev/video2" and config.threads == 2  # config file over profile
    assert (config.k, config.n) == (4, 6)  # flags over everything
    assert config.events == CameraConfig().events  # nobody set it: the default


def test_json_config_file_and_threshold_flags(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"max_frames": 10, "sinks": ["stdout"]}))
    config, _ = parse("--config", str(cfg), "--threshold", "defect=0.7", "--threshold", "crack=0.4",
                      "--no-snapshots", "--headless")
    assert config.max_frames == 10 and config.sinks == ["stdout"]
    assert config.thresholds == {"defect": 0.7, "crack": 0.4}
    assert config.snapshots is None and config.show is False


@pytest.mark.parametrize("bad", ["defect", "defect=", "=0.5", "defect=1.5", "defect=0", "defect=abc"])
def test_bad_threshold_flag_is_a_usage_error(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--threshold", bad])
    assert exc.value.code == 2
    assert "CLASS=VALUE" in capsys.readouterr().err


def test_unknown_setting_suggests_the_close_name(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("treshold = 3\nmax_frame = 4\n")
    with pytest.raises(ConfigError, match="unknown setting 'treshold'.*Did you mean 'thresholds'"):
        read_config_file(cfg)


@pytest.mark.parametrize("layer, match", [({"k": 6, "n": 5}, "1 <= k <= n"),
                                          ({"max_frames": 0}, "positive"),
                                          ({"k": "three"}, "invalid settings|k-of-n")])
def test_invalid_values_are_refused(layer, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        resolve(layer)


def test_broken_config_file_is_a_clear_error(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("k = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_config_file(cfg)
    with pytest.raises(ConfigError, match="cannot read"):
        read_config_file(tmp_path / "missing.toml")


def test_shipped_profiles_parse_and_point_at_existing_recipes():
    assert list_profiles() == BOARDS
    for name in BOARDS:
        prof = load_profile(name)
        assert prof.description and prof.install.is_file() and prof.service.is_file()
        config = resolve(prof.camera)  # every [camera] key is a real setting with a valid value
        # generic-cpu leaves the precision to the bundle: int8's speed there depends on the CPU.
        assert config.format in ("tflite", "onnx") and (config.precision or name == "generic-cpu")
        usb_camera = ("pi4", "desktop", "generic-cpu", "jetson-nano")  # the default source, camera 0
        assert config.source != CameraConfig().source or name in usb_camera
    jetson = resolve(load_profile("jetson-orin-nano").camera)
    assert jetson.providers == ["tensorrt", "cuda", "cpu"] and jetson.source == "csi://0"
    assert resolve(load_profile("pi5").camera).source == "picamera2"


def test_profile_errors(tmp_path):
    with pytest.raises(ConfigError, match="shipped names: " + ", ".join(BOARDS)):
        load_profile("pi3")
    bad = tmp_path / "b.toml"
    bad.write_text('[device]\nname = "b"\ncolour = "red"\n')
    with pytest.raises(ConfigError, match="unknown \\[device\\] keys"):
        load_profile(bad)
    bad.write_text('[camera]\nprecison = "int8"\n')
    with pytest.raises(ConfigError, match="Did you mean 'precision'"):
        load_profile(bad)


def test_list_profiles_flag_prints_every_board():
    out = subprocess.run([sys.executable, "-m", "runtime.camera", "--list-profiles"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert all(name in out.stdout for name in BOARDS)


def test_install_recipes_are_valid_bash_and_install_only_the_runtime():
    scripts = sorted((PROFILE_DIR / "install").glob("*.sh"))
    assert [s.name for s in scripts] == ["common.sh", "desktop.sh", "jetson.sh", "pi.sh"]
    for script in scripts:
        subprocess.run(["bash", "-n", str(script)], check=True)
    common = (PROFILE_DIR / "install" / "common.sh").read_text()
    assert '"$REPO/runtime" "$REPO/devices"' in common and "tensorflow" not in common.replace(
        "'tensorflow' not in sys.modules", "")
    # apt's picamera2 needs numpy 1; the pins live in one file, shared with the arm64 emulation test
    assert "devices/requirements/pi.txt" in (PROFILE_DIR / "install" / "pi.sh").read_text()
    assert "numpy<2" in (PROFILE_DIR / "requirements" / "pi.txt").read_text().splitlines()
    assert "onnxruntime-gpu" in (PROFILE_DIR / "install" / "jetson.sh").read_text()


def test_service_unit_runs_the_camera_at_boot_with_restart():
    unit = (PROFILE_DIR / "systemd" / "edgeflag-camera.service").read_text()
    sections = re.findall(r"^\[(\w+)\]", unit, flags=re.M)
    assert sections == ["Unit", "Service", "Install"]
    exec_start = re.search(r"^ExecStart=((?:[^\n]*\\\n)*[^\n]*)", unit, flags=re.M).group(1)
    assert "-m runtime.camera" in exec_start and "--headless" in exec_start
    assert "--profile ${EDGEFLAG_PROFILE}" in exec_start
    assert re.search(r"^Restart=always$", unit, flags=re.M)
    assert re.search(r"^KillSignal=SIGTERM$", unit, flags=re.M)
    assert re.search(r"^WantedBy=multi-user.target$", unit, flags=re.M)
