"""Board detection over fake device trees, the shipped profiles, Python 3.10 and the systemd unit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.detect import detect
from runtime.profile import list_profiles, load_profile

REPO = Path(__file__).resolve().parents[1]
X86_CPUINFO = ("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"
               "flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n")
AVX2_CPUINFO = "processor\t: 0\nmodel name\t: Intel(R) Core(TM) i5-8250U\nflags\t\t: fpu sse2 avx2 fma\n"
A72_CPUINFO = ("processor\t: 0\nBogoMIPS\t: 108.00\n"
               "Features\t: fp asimd evtstrm crc32 cpuid\nCPU part\t: 0xd08\n")
A76_CPUINFO = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp\n"


def fake_root(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    """A folder that stands in for / with the given files (device-tree strings end in NUL)."""
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return tmp_path


@pytest.fixture
def no_gpu(monkeypatch, tmp_path):
    """PATH without nvidia-smi, whatever the machine running the tests has."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.mark.parametrize("files, machine, profile, evidence", [
    ({"proc/device-tree/model": b"Raspberry Pi 4 Model B Rev 1.5\0", "proc/cpuinfo": A72_CPUINFO},
     "aarch64", "pi4", "Raspberry Pi 4 Model B"),
    ({"proc/device-tree/model": b"Raspberry Pi 5 Model B Rev 1.0\0", "proc/cpuinfo": A76_CPUINFO},
     "aarch64", "pi5", "Raspberry Pi 5"),
    ({"proc/device-tree/model": b"Raspberry Pi Compute Module 4 Rev 1.0\0"},
     "aarch64", "pi4", "Compute Module 4"),
    ({"proc/device-tree/model": b"NVIDIA Jetson Orin Nano Developer Kit\0",
      "proc/device-tree/compatible": b"nvidia,p3768-0000+p3767-0005\0nvidia,p3767-0005\0nvidia,tegra234\0",
      "etc/nv_tegra_release": "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic\n"},
     "aarch64", "jetson-orin-nano", "tegra234"),
    ({"proc/device-tree/model": b"NVIDIA Jetson Nano Developer Kit\0",
      "proc/device-tree/compatible": b"nvidia,p3450-0000\0nvidia,jetson-nano\0nvidia,tegra210\0"},
     "aarch64", "jetson-nano", "tegra210"),
    # A container on a Jetson: no device tree, only the L4T release file bind-mounted in.
    ({"etc/nv_tegra_release": "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref\n"},
     "aarch64", "jetson-nano", "L4T R32"),
    ({"proc/cpuinfo": X86_CPUINFO}, "x86_64", "generic-cpu", "x86_64 CPU"),
    # An Arm board that is neither (a Rock 5, say): its model string is read but matches nothing.
    ({"proc/device-tree/model": b"Radxa ROCK 5B\0", "proc/cpuinfo": A76_CPUINFO}, "aarch64", "generic-cpu",
     "aarch64 CPU"),
])
def test_detect_names_the_board_from_its_files(tmp_path, no_gpu, files, machine, profile, evidence):
    found = detect(fake_root(tmp_path, files), machine=machine)
    assert found.profile == profile and evidence in found.reasons[0], found
    assert profile in list_profiles()  # every profile detection can name is shipped


def test_detect_reports_the_int8_relevant_cpu_features(tmp_path, no_gpu):
    epyc = detect(fake_root(tmp_path / "a", {"proc/cpuinfo": X86_CPUINFO}), machine="x86_64")
    assert epyc.cpu == "AMD EPYC 7B13" and epyc.isa == ["avx2", "avx512f", "avx512_vnni"]
    assert "VNNI" in epyc.int8_hint()
    laptop = detect(fake_root(tmp_path / "b", {"proc/cpuinfo": AVX2_CPUINFO}), machine="x86_64")
    assert laptop.isa == ["avx2"] and "without VNNI" in laptop.int8_hint()
    pi4 = detect(fake_root(tmp_path / "c", {"proc/cpuinfo": A72_CPUINFO}), machine="aarch64")
    assert pi4.isa == [] and "without dot-product" in pi4.int8_hint()
    pi5 = detect(fake_root(tmp_path / "d", {"proc/cpuinfo": A76_CPUINFO}), machine="aarch64")
    assert pi5.isa == ["asimddp"] and "asimddp" in pi5.int8_hint()


def test_detect_finds_a_desktop_gpu_through_nvidia_smi(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"  # stands in for the driver's tool: same flags, same output format
    smi.write_text('#!/bin/sh\n[ "$1" = "--query-gpu=name" ] && echo "NVIDIA GeForce RTX 4090" && exit 0\n'
                   'exit 9\n')
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    found = detect(fake_root(tmp_path / "root", {"proc/cpuinfo": X86_CPUINFO}), machine="x86_64")
    assert found.profile == "desktop" and "RTX 4090" in found.reasons[0]
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed: no driver loaded' >&2\nexit 9\n")
    assert detect(tmp_path / "root", machine="x86_64").profile == "generic-cpu"  # a driver that fails


def test_detect_command_prints_json_for_a_given_root(tmp_path):
    root = fake_root(tmp_path, {"proc/device-tree/model": b"Raspberry Pi 5 Model B Rev 1.0\0",
                                "proc/cpuinfo": A76_CPUINFO})
    out = subprocess.run([sys.executable, "-m", "devices", "detect", "--root", str(root), "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["profile"] == "pi5" and doc["isa"] == ["asimddp"] and "int8" in doc["int8_hint"]


def test_profile_auto_loads_what_detect_names():
    from runtime.camera import resolve_args

    _config, path = resolve_args({"profile": "auto"})
    assert Path(path).stem == detect().profile
    board_files = ("/proc/device-tree/model", "/proc/device-tree/compatible", "/etc/nv_tegra_release")
    if not any(Path(f).exists() for f in board_files) and not shutil.which("nvidia-smi"):
        assert detect().profile == "generic-cpu"  # a CI machine or a plain desktop


@pytest.mark.parametrize("name", list_profiles())
def test_every_shipped_profile_loads_with_its_recipe_and_unit(name):
    prof = load_profile(name)
    assert prof.name == name and prof.description and prof.notes
    assert prof.install and prof.install.is_file() and prof.service and prof.service.is_file()


def test_runtime_and_devices_stay_python_3_10_compatible():
    """Jetson's JetPack 6 ships Python 3.10: nothing in the board-side code may need 3.11."""
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    assert vermin, "vermin not installed: it is a dev dependency (make setup installs it)"
    out = subprocess.run([vermin, "-t=3.10-", "--violations", "--no-tips", "--eval-annotations",
                          "runtime", "devices"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"),
                    reason="systemd-analyze not installed (Debian: apt-get install systemd)")
def test_the_service_unit_passes_systemd_analyze_verify(tmp_path):
    prefix = tmp_path / "opt-edgeflag"  # install_service renders the unit for its PREFIX
    (prefix / "venv" / "bin").mkdir(parents=True)
    (prefix / "venv" / "bin" / "python").symlink_to(sys.executable)
    unit = subprocess.run(["bash", "-c", "source devices/install/common.sh && render_unit"], cwd=REPO,
                          env={**os.environ, "PREFIX": str(prefix)}, capture_output=True, text=True,
                          check=True)
    assert f"ExecStart={prefix}/venv/bin/python -m runtime.camera" in unit.stdout
    path = tmp_path / "edgeflag-camera.service"
    path.write_text(unit.stdout)
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True,
                         text=True, timeout=60)
    # Unknown keys and bad values are warnings with exit 0: any output at all is a finding.
    assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stdout + out.stderr
