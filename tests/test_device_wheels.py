"""The boards' Python packages resolve for their Python and glibc (needs PyPI: run by make test-arm64).

No Python 3.10 arm64 userland can be had here (Debian bookworm ships 3.11; Ubuntu's archive, where
JetPack's jammy lives, is out of reach), so Jetson's Python 3.10 is covered by resolving its
requirements for cp310 aarch64 with pip, and the runtime's code by vermin (tests/test_devices.py).
"""

from __future__ import annotations

import re

import pytest

from devices.emulate.wheels import manylinux_platforms, resolve

pytestmark = pytest.mark.arm64
OFFLINE = re.compile(r"NewConnectionError|Temporary failure in name resolution|Network is unreachable|"
                     r"ConnectTimeout|ProxyError|Max retries exceeded")


def resolved(requirements: list[str], python: str, glibc: str) -> dict[str, tuple[str, str]]:
    """{name: (version, wheel file)}; skips, saying so, when the index cannot be reached."""
    try:
        return {r.name.lower(): (r.version, r.wheel) for r in resolve(requirements, python, glibc)}
    except RuntimeError as exc:
        if OFFLINE.search(str(exc)):
            pytest.skip(f"package index not reachable: {str(exc)[-300:]}")
        raise


def glibc_needed(wheel: str) -> tuple[int, int]:
    """The newest glibc a wheel's manylinux tags ask for (the lowest of them is enough to install it)."""
    tags = [(2, 17) if t == "2014" else tuple(map(int, t.split("_")))
            for t in re.findall(r"manylinux_?(2014|2_\d+)_aarch64", wheel)]
    return min(tags) if tags else (0, 0)


def test_manylinux_platforms_cover_up_to_the_glibc():
    assert manylinux_platforms("2.27") == ["manylinux2014_aarch64"] + [
        f"manylinux_2_{m}_aarch64" for m in range(17, 28)]
    with pytest.raises(ValueError, match="2.17 or newer"):
        manylinux_platforms("2.12")


def test_jetson_requirements_resolve_for_jetpack6_python_3_10():
    got = resolved(["-r", "devices/requirements/jetson.txt"], "3.10", "2.35")  # Ubuntu 22.04's glibc
    assert got["numpy"][0].startswith("1.") and "cp310" in got["numpy"][1]  # JetPack's OpenCV: numpy 1
    assert "tomli" in got


def test_pi_requirements_resolve_for_pi_os_bookworm():
    got = resolved(["-r", "devices/requirements/pi.txt"], "3.11", "2.36")  # the sysroot's, and the Pi's
    assert got["numpy"][0].startswith("1.")  # apt's picamera2 is built against numpy 1.24
    assert {"opencv-python-headless", "ai-edge-litert", "ml_dtypes"} <= set(got), sorted(got)


def test_cpu_runtime_resolves_for_a_python_3_10_on_the_jetson_nano():
    """The jetson-nano profile's route: a Python 3.10 on Ubuntu 18.04 (glibc 2.27), CPU packages."""
    got = resolved(["-r", "devices/requirements/cpu.txt", "onnxruntime"], "3.10", "2.27")
    for name in ("numpy", "opencv-python-headless", "ai-edge-litert", "onnxruntime", "tomli"):
        assert name in got, (name, sorted(got))
        assert glibc_needed(got[name][1]) <= (2, 27), got[name]
